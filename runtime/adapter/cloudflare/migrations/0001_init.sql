-- Face gallery schema for the Cloudflare D1 store (src/server/store/d1.ts).
-- Apply with: npx wrangler d1 migrations apply <DATABASE_NAME> [--local|--remote]
CREATE TABLE IF NOT EXISTS collections (
  id TEXT PRIMARY KEY,
  model TEXT NOT NULL,
  dim INTEGER NOT NULL,
  metadata TEXT,
  created_at TEXT NOT NULL,
  face_count INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0
);

-- One row per enrolled face; embedding = dim int8 values as a BLOB.
CREATE TABLE IF NOT EXISTS faces (
  collection_id TEXT NOT NULL,
  face_id TEXT NOT NULL,
  external_id TEXT,
  metadata TEXT,
  created_at TEXT NOT NULL,
  embedding BLOB NOT NULL,
  PRIMARY KEY (collection_id, face_id)
);

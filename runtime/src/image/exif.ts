/**
 * EXIF orientation from a JPEG APP1 payload. Every read is bounds-checked; a broken or hostile EXIF
 * block yields orientation 1 (the image is used as stored) instead of an error, as cameras and
 * editors write plenty of damaged EXIF.
 */

/** Orientation 1..8 from the TIFF structure after "Exif\0\0"; 1 when absent or unreadable. */
export function exifOrientation(tiff: Uint8Array | null): number {
  if (!tiff || tiff.length < 8) return 1;
  const le = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!le && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 1;
  const u16 = (
    o: number,
  ) => (o + 2 > tiff.length ? -1 : le ? tiff[o] | (tiff[o + 1] << 8) : (tiff[o] << 8) | tiff[o + 1]);
  const u32 = (o: number) =>
    o + 4 > tiff.length
      ? -1
      : le
      ? (tiff[o] | (tiff[o + 1] << 8) | (tiff[o + 2] << 16)) + tiff[o + 3] * 2 ** 24
      : tiff[o] * 2 ** 24 + ((tiff[o + 1] << 16) | (tiff[o + 2] << 8) | tiff[o + 3]);
  if (u16(2) !== 42) return 1;
  const ifd = u32(4);
  const n = u16(ifd);
  if (ifd < 8 || n < 0) return 1;
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > tiff.length) return 1;
    if (u16(e) !== 0x0112) continue;
    if (u16(e + 2) !== 3 || u32(e + 4) !== 1) return 1; // SHORT, count 1
    const v = u16(e + 8);
    return v >= 1 && v <= 8 ? v : 1;
  }
  return 1;
}

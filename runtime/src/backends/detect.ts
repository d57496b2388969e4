/**
 * Runtime detection, in one place: which JS host we are on and whether a WebGPU adapter exists.
 * No top-level Deno/Node API use, so this module loads on Cloudflare Workers too.
 */

/** What the host offers. */
export interface HostInfo {
  /** "deno", "node", "workerd" (Cloudflare Workers), "browser" or "unknown". */
  host: "deno" | "node" | "workerd" | "browser" | "unknown";
  /** Logical CPUs the host reports (1 when unknown). */
  cpus: number;
  /** `navigator.gpu` exists (an adapter may still be missing). */
  webgpuApi: boolean;
}

interface Nav {
  userAgent?: string;
  hardwareConcurrency?: number;
  gpu?: GpuLike;
}

/** The subset of GPUAdapter used here. */
export interface GpuAdapterLike {
  /** Supported optional features (e.g. `shader-f16`). */
  features: { has(f: string): boolean };
  /** Adapter identification (`GPUAdapterInfo`), where the implementation provides it. */
  info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
  /** Older spelling of `info.isFallbackAdapter`: a software (fallback) adapter. */
  isFallbackAdapter?: boolean;
}

function nav(): Nav | undefined {
  return (globalThis as { navigator?: Nav }).navigator;
}

/** Describe the current host. */
export function hostInfo(): HostInfo {
  const g = globalThis as Record<string, unknown>;
  const ua = nav()?.userAgent ?? "";
  let host: HostInfo["host"] = "unknown";
  if (typeof g.Deno === "object" && g.Deno !== null) host = "deno";
  else if (ua.startsWith("Cloudflare-Workers")) host = "workerd";
  else if (typeof (g.process as { versions?: { node?: string } } | undefined)?.versions?.node === "string") {
    host = "node";
  } else if (typeof g.document === "object") host = "browser";
  return {
    host,
    cpus: Math.max(1, nav()?.hardwareConcurrency ?? 1),
    webgpuApi: typeof nav()?.gpu === "object",
  };
}

/** Result of {@link probeWebGpu}. */
export interface WebGpuProbe {
  adapter: GpuAdapterLike | null;
  /** Why there is no usable adapter (null when there is one). */
  reason: string | null;
  /** Software adapter (llvmpipe/SwiftShader): correct but slow. */
  software: boolean;
  /** `shader-f16` is available (real fp16 compute). */
  f16: boolean;
  /** Human-readable adapter name. */
  description: string;
}

/** The `navigator.gpu` surface used here. */
export interface GpuLike {
  /** Request an adapter (`navigator.gpu.requestAdapter`); null when none is available. */
  requestAdapter(o?: unknown): Promise<GpuAdapterLike | null>;
}

let probe: Promise<WebGpuProbe> | null = null;

/**
 * Ask for a WebGPU adapter. Never throws. With no argument `navigator.gpu` is used and the answer
 * is cached for the process; pass a GPU object (or null for "no WebGPU") to probe that instead.
 */
export function probeWebGpu(gpu?: GpuLike | null): Promise<WebGpuProbe> {
  if (gpu !== undefined) return doProbe(gpu);
  probe ??= doProbe(nav()?.gpu ?? null);
  return probe;
}

async function doProbe(gpu: GpuLike | null): Promise<WebGpuProbe> {
  const none = (reason: string): WebGpuProbe => ({
    adapter: null,
    reason,
    software: false,
    f16: false,
    description: "",
  });
  if (!gpu) return none("this runtime has no navigator.gpu (WebGPU API)");
  let adapter: GpuAdapterLike | null = null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return none(`navigator.gpu.requestAdapter() failed: ${(e as Error).message}`);
  }
  if (!adapter) {
    return none(
      "navigator.gpu.requestAdapter() returned null (no GPU/driver; on Debian `apt-get install mesa-vulkan-drivers` gives a software adapter)",
    );
  }
  const info = adapter.info ?? {};
  const description = info.description || [info.vendor, info.architecture].filter(Boolean).join(" ") ||
    "unknown";
  const software = !!(info.isFallbackAdapter ?? adapter.isFallbackAdapter) ||
    /llvmpipe|swiftshader|lavapipe|software/i.test(description);
  return { adapter, reason: null, software, f16: adapter.features.has("shader-f16"), description };
}

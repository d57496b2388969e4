/**
 * tfjs backend selection for training: `auto` tries webgpu → wasm → cpu. The wasm backend needs
 * its .wasm binaries located explicitly under Deno (no bundler, no fetch of relative URLs).
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { InvalidArgumentError, RepmlpError } from "../../runtime/src/errors.ts";
import { probeWebGpu } from "../../runtime/src/backends/detect.ts";

/** Backend names accepted by `--backend`. */
export type BackendName = "auto" | "webgpu" | "wasm" | "cpu";

function wasmDir(): string {
  // import.meta.resolve gives the package entry inside node_modules (nodeModulesDir: auto) or the
  // npm cache; the .wasm files sit next to it in dist/.
  const entry = import.meta.resolve("@tensorflow/tfjs-backend-wasm");
  return entry.slice(0, entry.lastIndexOf("/") + 1);
}

let wasmReady = false;

/**
 * tfjs saves every tensor a gradient needs through the Identity kernel, and the wasm backend's
 * Identity copies the buffer. Tensors are immutable, so sharing the buffer by reference count
 * (what the cpu backend does) is equivalent and removes gigabytes of copies per epoch.
 */
function shareWasmIdentity() {
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel({
    kernelName: "Identity",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      (backend as unknown as { incRef(id: unknown): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}

/** Why `auto` skipped WebGPU (null when it did not). */
export let webgpuNote: string | null = null;

async function tryBackend(name: "webgpu" | "wasm" | "cpu", auto: boolean): Promise<boolean> {
  try {
    if (name === "webgpu") {
      const p = await probeWebGpu();
      if (!p.adapter) {
        webgpuNote = p.reason;
        return false;
      }
      // A software adapter (llvmpipe/lavapipe) trains correctly but ~100× slower than wasm here.
      if (auto && p.software) {
        webgpuNote =
          `WebGPU adapter '${p.description}' is a software rasteriser; using wasm (force with --backend webgpu)`;
        return false;
      }
    }
    if (name === "wasm" && !wasmReady) {
      setWasmPaths(wasmDir());
      shareWasmIdentity();
      wasmReady = true;
    }
    if (name === "webgpu") await import("@tensorflow/tfjs-backend-webgpu");
    const ok = await tf.setBackend(name);
    if (!ok) return false;
    await tf.ready();
    return tf.getBackend() === name;
  } catch {
    return false;
  }
}

/**
 * Select and initialise a tfjs backend. `auto` = first of webgpu, wasm, cpu that initialises.
 * Returns the backend actually in use.
 */
export async function initBackend(name: BackendName = "auto"): Promise<"webgpu" | "wasm" | "cpu"> {
  if (!["auto", "webgpu", "wasm", "cpu"].includes(name)) {
    throw new InvalidArgumentError(`unknown backend '${name}'`, "use one of: auto, webgpu, wasm, cpu");
  }
  const order: ("webgpu" | "wasm" | "cpu")[] = name === "auto" ? ["webgpu", "wasm", "cpu"] : [name];
  for (const b of order) {
    if (await tryBackend(b, name === "auto")) return b;
  }
  throw new RepmlpError("runtime", `tfjs backend '${name}' could not be initialised`, {
    hint: name === "webgpu" ? "no WebGPU adapter here; use --backend wasm" : "try --backend cpu",
  });
}

/** Read a tensor's values without blocking (required on webgpu, fine elsewhere). */
export async function values(t: tf.Tensor): Promise<Float32Array> {
  return new Float32Array(await t.data() as Float32Array);
}

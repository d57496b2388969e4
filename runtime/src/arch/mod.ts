/** Architecture descriptions: the IR, the official classes and presets. */
export * from "./ir.ts";
export * from "./registry.ts";
import "./kit.ts";
import "./faceapi.ts";

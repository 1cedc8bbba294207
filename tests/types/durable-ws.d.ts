// The module `durable-ws` as the sample imports it. The npm package (pkg/, `--target bundler`)
// initialises itself on import; `--target web` builds (www/pkg) export the `init()` the README
// snippet awaits. Everything else is the real generated declarations.
export * from "../../pkg/durable_ws";
export default function init(): Promise<unknown>;

// Bundles the console into dist/: index.html, assets/console.js, assets/console.css and
// assets/favicon.svg.
// No timestamps, hashes of time or source maps: the same sources give the same bytes,
// so CI can compare the rebuilt bundle with the committed one.
import { analyzeMetafile, build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

const dist = new URL("./dist/", import.meta.url);
await rm(dist, { recursive: true, force: true });
await mkdir(new URL("assets/", dist), { recursive: true });
await build({
  entryPoints: [
    { in: "src/main.ts", out: "console" },
    { in: "src/style.css", out: "console" },
  ],
  outdir: "dist/assets",
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
  metafile: process.argv.includes("--analyze"),
}).then(async (result) => {
  if (result.metafile) console.log(await analyzeMetafile(result.metafile));
});
await copyFile(new URL("./index.html", import.meta.url), new URL("index.html", dist));
await copyFile(new URL("./favicon.svg", import.meta.url), new URL("assets/favicon.svg", dist));

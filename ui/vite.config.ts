import { defineConfig } from "vite";

// The build is committed under the Python package, which serves it: installing Headrace
// needs no npm. `npm run dev` proxies the API to a running `headrace ui`.
export default defineConfig({
  base: "/",
  build: {
    outDir: "../operator/headrace/ui/static",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
  },
  server: { proxy: { "/api": "http://127.0.0.1:8420" } },
});

// ESLint for the platform's own browser modules (make lint). Vendored libraries are
// build output (dashboard/build_assets.py) and are not linted.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["dashboard/static/vendor/**", "node_modules/**"] },
  js.configs.recommended,
  {
    files: ["dashboard/static/**/*.js", "big_screen/static/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: {
        ...globals.browser,
        // the vendored libraries, loaded as classic scripts before the page module
        L: "readonly",
        echarts: "readonly",
        Supercluster: "readonly",
      },
    },
    rules: {
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: "build nodes and set textContent (lib/dom.js)" },
        { property: "outerHTML", message: "build nodes and set textContent (lib/dom.js)" },
        { property: "insertAdjacentHTML", message: "build nodes (lib/dom.js)" },
      ],
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-var": "error",
      "prefer-const": "error",
    },
  },
  {
    files: ["dashboard/static/m/sw.js"],
    languageOptions: { sourceType: "script", globals: { ...globals.serviceworker } },
  },
];

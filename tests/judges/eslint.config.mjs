// The dashboard's ES modules (src/web/ui/*.js), checked by scripts/test: every name used is
// defined or imported (a name missing after a move between modules is a ReferenceError only
// when that code path runs), nothing imported or declared goes unused, no duplicate keys.
import globals from "globals";
export default [{
  files: ["**/*.js"],
  languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.browser } },
  rules: {
    "no-undef": "error",
    "no-unused-vars": ["error", { args: "none", caughtErrors: "none" }],
    "no-redeclare": "error",
    "no-dupe-keys": "error",
    "no-import-assign": "error",
    "no-const-assign": "error",
    "no-unreachable": "error",
  },
}];

#!/usr/bin/env node
// A solc-compatible command line over solc-js (WebAssembly), so that zkinfer and forge can compile
// offline: no native solc can be downloaded on these machines.
//   solc.js --version                 prints "Version: <solc version>" like native solc
//   solc.js --standard-json < in.json  prints solc's standard-JSON output
"use strict";
const path = require("path");
const solc = require(path.join(__dirname, "..", "node_modules", "solc"));

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("usage: solc.js --version | --standard-json < input.json\n");
  process.exit(2);
}
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  process.stdout.write(solc.compile(input));
});

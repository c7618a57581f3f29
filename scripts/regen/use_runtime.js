// Loads the USE-Lite JavaScript runtime (@energetic-ai/embeddings + @energetic-ai/core) straight
// from the asset cache, with no npm install: the one import "@energetic-ai/core" is resolved to
// the cached bundle. Shared by the fixture scripts and scripts/bench_tokenizers.py.
const fs = require("fs");
const path = require("path");
const Module = require("module");

const REPO = path.resolve(__dirname, "..", "..");
const ASSETS = path.join(process.env.RANKEMB_CACHE_DIR || path.join(REPO, ".cache"), "assets");
const CORE_JS = path.join(ASSETS, "use-core", "dist", "index.js");
const EMBEDDINGS_JS = path.join(ASSETS, "use-embeddings", "dist", "index.js");
const VOCAB = path.join(ASSETS, "use-lite", "dist", "vocab.json");

const resolveOrig = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === "@energetic-ai/core") return CORE_JS;
  return resolveOrig.call(this, request, ...rest);
};
const core = require(CORE_JS);
const embeddings = require(EMBEDDINGS_JS);

// A function text -> ids using the package's own tokenizer.
async function makeTokenizer() {
  await core.ready();
  const vocabulary = JSON.parse(fs.readFileSync(VOCAB, "utf8"));
  const model = { async executeAsync() { return core.tensor2d([[0]]); } };
  const embedder = new embeddings.EmbeddingsModel({ vocabulary, model });
  return (text) => embedder.tokenizer.encode(text);
}

module.exports = { ASSETS, CORE_JS, EMBEDDINGS_JS, VOCAB, core, embeddings, makeTokenizer };

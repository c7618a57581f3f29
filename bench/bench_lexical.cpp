// Offline chain generation speed: CPU time of one 33-sentence chain (32 lexical steps, batch 1)
// per seed, on the real GloVe 100d vectors and Debian's WordNet. Loading is not part of a
// chain's cost. Prints one JSONL record with the median, minimum and maximum per chain; thread
// CPU time, because the machines are shared and wall time would measure the neighbours.
// (The lexical tests used to assert "< 100 ms"; speed lives here now, not in tests.)
//
// usage: bench_lexical VECTORS_DIR SEEDS.txt [CHAINS=10]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "rankemb/generate/seeds.h"
#include "rankemb/lexical/lexical_generator.h"
#include "rankemb/lexical/word_vectors.h"
#include "rankemb/lexical/wordnet.h"
#include "rankemb/util/error.h"

namespace {
double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace rankemb;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s VECTORS_DIR SEEDS.txt [CHAINS=10]\n", argv[0]);
    return 2;
  }
  try {
    const std::size_t chains = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 10;
    auto wordnet = std::make_shared<const lexical::WordNet>(lexical::WordNet::load("/usr/share/wordnet"));
    auto vectors = std::make_shared<const lexical::WordVectors>(lexical::WordVectors::load(argv[1]));
    const auto seeds = generate::read_seeds(argv[2]).seeds;
    lexical::LexicalGeneratorOptions o;
    o.batch = 1;
    auto gen = lexical::make_lexical_generator(wordnet, vectors, o);
    std::vector<double> ms;
    for (std::size_t c = 0; c < chains && c < seeds.size(); ++c) {
      const double t0 = cpu_ms();
      std::string prev = seeds[c].text, cur = seeds[c].text;
      for (int step = 1; step <= 32; ++step) {
        gen->submit({0, cur, prev, seeds[c].id, step});
        prev = cur;
        cur = gen->poll().at(0).text;
      }
      ms.push_back(cpu_ms() - t0);
    }
    if (ms.empty()) throw Error(ErrorCode::Input, "no seeds");
    std::sort(ms.begin(), ms.end());
    std::printf("{\"bench\":\"lexical_chain_33\",\"chains\":%zu,\"median_ms\":%.2f,\"min_ms\":%.2f,\"max_ms\":%.2f}\n",
                ms.size(), ms[ms.size() / 2], ms.front(), ms.back());
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_lexical: %s\n", e.what());
    return static_cast<int>(e.code());
  }
  return 0;
}

// Drives a SentenceGenerator the way generate::run does, for the tests of the LLM backend.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <vector>

#include "rankemb/generate/sentence_generator.h"

namespace rankemb::test {

// Submits every request as soon as there is room and polls until all are back; results by ticket.
// A ticket returned twice, a generator that stops making progress or one left with pending
// requests fails the calling test.
inline std::map<std::uint64_t, generate::StepResult> run_all(generate::SentenceGenerator& gen,
                                                             const std::vector<generate::StepRequest>& requests,
                                                             std::size_t* polls = nullptr) {
  std::map<std::uint64_t, generate::StepResult> out;
  std::size_t next = 0, n_polls = 0;
  while (out.size() < requests.size()) {
    while (next < requests.size() && gen.pending() < gen.capacity()) gen.submit(requests[next++]);
    for (auto& r : gen.poll()) {
      EXPECT_FALSE(out.count(r.ticket)) << "ticket " << r.ticket << " returned twice";
      out[r.ticket] = std::move(r);
    }
    if (++n_polls > 100000) {
      ADD_FAILURE() << "generator made no progress";
      break;
    }
  }
  EXPECT_EQ(gen.pending(), 0u);
  if (polls) *polls = n_polls;
  return out;
}

}  // namespace rankemb::test

// Progress reporting for long loops. Library code takes a Progress& and calls start/advance/
// finish; it never prints. The CLI passes a throttled one-line terminal renderer (counts, rate,
// ETA), tests pass NullProgress, a server passes a counter.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace rankemb {

class Progress {
 public:
  virtual ~Progress() = default;
  // Begins a stage of `total` units (0 = unknown), e.g. start("encoding", 1379, "sentences").
  virtual void start(std::string_view stage, std::uint64_t total, std::string_view unit) = 0;
  virtual void advance(std::uint64_t n = 1) = 0;
  // Extra text shown after the counters, e.g. "loss 0.412".
  virtual void set_detail(std::string_view detail) { (void)detail; }
  virtual void finish() = 0;
};

class NullProgress final : public Progress {
 public:
  void start(std::string_view, std::uint64_t, std::string_view) override {}
  void advance(std::uint64_t) override {}
  void finish() override {}
};

// One status line on stderr, redrawn at most every 100 ms; when stderr is not a terminal it
// prints a line every 10% (or every 30 s for unknown totals) so logs stay readable.
class TerminalProgress final : public Progress {
 public:
  TerminalProgress();
  void start(std::string_view stage, std::uint64_t total, std::string_view unit) override;
  void advance(std::uint64_t n = 1) override;
  void set_detail(std::string_view detail) override;
  void finish() override;

 private:
  void render(bool final_line);
  using Clock = std::chrono::steady_clock;
  bool tty_;
  std::string stage_, unit_, detail_;
  std::uint64_t total_ = 0, done_ = 0;
  Clock::time_point started_, last_draw_;
  int last_decile_ = -1;
  bool active_ = false;
};

}  // namespace rankemb

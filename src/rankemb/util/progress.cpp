#include "rankemb/util/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace rankemb {

namespace {
std::string format_duration(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "?";
  auto s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}
}  // namespace

TerminalProgress::TerminalProgress() : tty_(isatty(STDERR_FILENO) != 0) {}

void TerminalProgress::start(std::string_view stage, std::uint64_t total, std::string_view unit) {
  if (active_) finish();
  stage_ = stage;
  unit_ = unit;
  detail_.clear();
  total_ = total;
  done_ = 0;
  started_ = last_draw_ = Clock::now();
  last_decile_ = -1;
  active_ = true;
  render(false);
}

void TerminalProgress::advance(std::uint64_t n) {
  done_ += n;
  auto now = Clock::now();
  if (tty_) {
    if (now - last_draw_ >= std::chrono::milliseconds(100)) render(false);
  } else if (total_ > 0) {
    int decile = static_cast<int>(10 * done_ / total_);
    if (decile != last_decile_) render(false);
  } else if (now - last_draw_ >= std::chrono::seconds(30)) {
    render(false);
  }
}

void TerminalProgress::set_detail(std::string_view detail) { detail_ = detail; }

void TerminalProgress::finish() {
  if (!active_) return;
  render(true);
  active_ = false;
}

void TerminalProgress::render(bool final_line) {
  auto now = Clock::now();
  last_draw_ = now;
  double elapsed = std::chrono::duration<double>(now - started_).count();
  double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  std::string line;
  if (total_ > 0) {
    double frac = static_cast<double>(done_) / static_cast<double>(total_);
    last_decile_ = static_cast<int>(10 * frac);
    constexpr int kWidth = 24;
    int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<std::size_t>(std::min(filled, kWidth)), '#');
    bar.resize(kWidth, '.');
    double eta = rate > 0 ? static_cast<double>(total_ - std::min(done_, total_)) / rate : -1;
    line = fmt::format("{} [{}] {}/{} {} {:.1f}/s {} {}", stage_, bar, done_, total_, unit_, rate,
                       final_line ? "in " + format_duration(elapsed) : "ETA " + format_duration(eta), detail_);
  } else {
    line = fmt::format("{} {} {} {:.1f}/s {} {}", stage_, done_, unit_, rate, format_duration(elapsed), detail_);
  }
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace rankemb

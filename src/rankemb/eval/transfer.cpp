#include "rankemb/eval/transfer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>

#include "rankemb/util/error.h"
#include "rankemb/util/log.h"

namespace rankemb::eval {

namespace {

torch::Tensor to_tensor(const Features& x) {
  return torch::from_blob(const_cast<double*>(x.values.data()), {static_cast<std::int64_t>(x.rows), static_cast<std::int64_t>(x.dim)},
                          torch::kFloat64)
      .clone();
}

Features take_rows(const Features& x, const std::vector<std::size_t>& idx) {
  Features out;
  out.rows = idx.size();
  out.dim = x.dim;
  out.values.reserve(out.rows * out.dim);
  for (std::size_t i : idx) {
    const auto r = x.row(i);
    out.values.insert(out.values.end(), r.begin(), r.end());
  }
  return out;
}

std::vector<int> take(const std::vector<int>& v, const std::vector<std::size_t>& idx) {
  std::vector<int> out;
  out.reserve(idx.size());
  for (std::size_t i : idx) out.push_back(v[i]);
  return out;
}

// Indices 0..n-1 not in the (sorted) `excluded`.
std::vector<std::size_t> complement(std::size_t n, const std::vector<std::size_t>& excluded) {
  std::vector<std::size_t> out;
  out.reserve(n - excluded.size());
  std::size_t j = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (j < excluded.size() && excluded[j] == i) {
      ++j;
      continue;
    }
    out.push_back(i);
  }
  return out;
}

// Cholesky factors of (data Hessian + penalty) per penalty, kept across the fits of one task. The
// nested CV fits the same penalty on ~100 heavily overlapping training sets whose optima are close,
// so a factor from an earlier fit is a good preconditioner for the next one ("lagged" Newton):
// each step then costs two passes over the data instead of an O(n d^2) Hessian. A step that does
// not at least halve the largest gradient entry refreshes the factor at the current point, so a fit
// still ends with exact Newton steps when the old factor fits poorly.
struct HessianCache {
  std::map<double, torch::Tensor> chol;
  std::size_t n_hessians = 0;  // exact Hessians formed (for the log)
};

// Newton's method for binary L2 logistic regression: minimises
//   f(t) = mean(softplus(z) - y z) + (lam / 2) |w|^2,  z = Xa t,  t = [w, b] (b unpenalised)
// from `theta`. The Hessian Xa^T diag(p(1-p)) Xa / n + lam I_w is formed in float32 (the one
// O(n d^2) product; an inexact Hessian only slows the last steps, the gradient that decides
// convergence is float64), solved by Cholesky, with Armijo backtracking. Stops when the largest
// gradient entry is below 1e-10 or a step no longer lowers f.
torch::Tensor newton_binary(const torch::Tensor& xa, const torch::Tensor& xa32, const torch::Tensor& y, double lam,
                            torch::Tensor theta, int max_steps, HessianCache* cache) {
  const auto n = static_cast<double>(xa.size(0));
  const std::int64_t p = xa.size(1);
  torch::Tensor pen = torch::full({p}, lam, torch::kFloat64);
  pen.index_put_({p - 1}, 0.0);
  auto objective = [&](const torch::Tensor& z, const torch::Tensor& th) {
    // softplus(z) = max(z, 0) + log1p(exp(-|z|)), exact for large |z|.
    const torch::Tensor sp = torch::clamp_min(z, 0) + torch::log1p(torch::exp(-z.abs()));
    return (sp - y * z).sum().item<double>() / n + 0.5 * (pen * th * th).sum().item<double>();
  };
  torch::Tensor chol;
  if (cache) {
    auto it = cache->chol.find(lam);
    if (it != cache->chol.end()) chol = it->second;
  }
  bool fresh = false;  // `chol` was formed at the current fit's previous point
  double prev_g = std::numeric_limits<double>::infinity();
  torch::Tensor z = torch::mv(xa, theta);
  double f = objective(z, theta);
  for (int step = 0; step < max_steps; ++step) {
    const torch::Tensor prob = torch::sigmoid(z);
    const torch::Tensor g = torch::mv(xa.t(), prob - y) / n + pen * theta;
    const double gmax = g.abs().max().item<double>();
    if (gmax < 1e-10) break;
    if (!chol.defined() || (!fresh && gmax > 0.5 * prev_g)) {
      const torch::Tensor d = (prob * (1 - prob)).to(torch::kFloat32);
      torch::Tensor h = torch::mm(xa32.t(), xa32 * d.unsqueeze(1)).to(torch::kFloat64) / n;
      h.diagonal().add_(pen + 1e-12);
      auto [factor, info] = torch::linalg_cholesky_ex(h);
      if (info.item<int>() != 0) {  // float32 rounding on a nearly singular Hessian: regularise a little
        h.diagonal().add_(1e-8);
        factor = torch::linalg_cholesky(h);
      }
      chol = factor;
      fresh = true;
      if (cache) {
        cache->chol[lam] = chol;
        ++cache->n_hessians;
      }
    } else {
      fresh = false;
    }
    prev_g = gmax;
    const torch::Tensor dir = torch::cholesky_solve(-g.unsqueeze(1), chol).squeeze(1);
    const double slope = (g * dir).sum().item<double>();
    if (!(slope < 0)) break;
    double t = 1.0;
    bool moved = false;
    for (int k = 0; k < 40; ++k, t *= 0.5) {
      const torch::Tensor cand = theta + t * dir;
      const torch::Tensor zc = torch::mv(xa, cand);
      const double fc = objective(zc, cand);
      if (fc <= f + 1e-4 * t * slope + 1e-15 * std::abs(f)) {
        moved = fc < f;
        theta = cand;
        z = zc;
        f = fc;
        break;
      }
    }
    if (!moved) {
      if (fresh) break;  // an exact Newton step cannot improve f: converged to rounding
      chol = torch::Tensor();  // the lagged factor misled the step: refresh it
      prev_g = std::numeric_limits<double>::infinity();
    }
  }
  return theta;
}

// One training set, converted to tensors once and fitted at several penalties (the CV loops fit
// every grid penalty on the same fold, warm-starting each fit from the previous one).
class Problem {
 public:
  Problem(const Features& x, const std::vector<int>& labels, std::size_t n_classes) : n_classes_(n_classes), dim_(x.dim) {
    RANKEMB_CHECK(x.rows == labels.size() && x.values.size() == x.rows * x.dim, ErrorCode::Other,
                  "logistic regression: {} rows of features ({} values, dim {}) for {} labels", x.rows, x.values.size(), x.dim,
                  labels.size());
    RANKEMB_CHECK(x.rows > 0 && n_classes >= 2, ErrorCode::Other, "logistic regression needs rows ({}) and >= 2 classes ({})",
                  x.rows, n_classes);
    std::vector<std::int64_t> y64;
    y64.reserve(labels.size());
    for (int l : labels) {
      RANKEMB_CHECK(l >= 0 && static_cast<std::size_t>(l) < n_classes, ErrorCode::Other, "label {} outside [0, {})", l, n_classes);
      y64.push_back(l);
    }
    x_ = to_tensor(x);
    y_ = torch::tensor(y64, torch::kInt64);
    if (n_classes_ == 2) {
      xa_ = torch::cat({x_, torch::ones({x_.size(0), 1}, torch::kFloat64)}, 1).contiguous();
      xa32_ = xa_.to(torch::kFloat32);
      yf_ = y_.to(torch::kFloat64);
    }
  }

  // `cache` (optional) shares Hessian factors between fits of one task (binary tasks only).
  LogReg fit(double l2, int max_iter, const LogReg* init, HessianCache* cache = nullptr) const {
    torch::NoGradGuard no_grad;
    if (init) RANKEMB_CHECK(init->n_classes == n_classes_ && init->dim == dim_, ErrorCode::Other, "warm start of the wrong shape");
    return n_classes_ == 2 ? fit_binary(l2, max_iter, init, cache) : fit_lbfgs(l2, max_iter, init);
  }

 private:
  LogReg make(const torch::Tensor& w, const torch::Tensor& b) const {
    LogReg out;
    out.n_classes = n_classes_;
    out.dim = dim_;
    const torch::Tensor wc = w.detach().contiguous(), bc = b.detach().contiguous();
    out.weight.assign(wc.data_ptr<double>(), wc.data_ptr<double>() + wc.numel());
    out.bias.assign(bc.data_ptr<double>(), bc.data_ptr<double>() + bc.numel());
    return out;
  }

  // Penalty l2 (|w0|^2 + |w1|^2) at w0 = -w1 = -w/2 is (l2 / 2) |w|^2.
  LogReg fit_binary(double l2, int max_iter, const LogReg* init, HessianCache* cache) const {
    const auto d = static_cast<std::int64_t>(dim_);
    torch::Tensor theta = torch::zeros({d + 1}, torch::kFloat64);
    if (init) {
      auto* t = theta.data_ptr<double>();
      for (std::size_t k = 0; k < dim_; ++k) t[k] = init->weight[dim_ + k] - init->weight[k];
      t[d] = init->bias[1] - init->bias[0];
    }
    theta = newton_binary(xa_, xa32_, yf_, l2, theta, std::max(100, max_iter / 5), cache);
    const torch::Tensor w = theta.slice(0, 0, d), b = theta.slice(0, d, d + 1);
    return make(torch::stack({-0.5 * w, 0.5 * w}), torch::cat({-0.5 * b, 0.5 * b}));
  }

  LogReg fit_lbfgs(double l2, int max_iter, const LogReg* init) const {
    const auto c = static_cast<std::int64_t>(n_classes_), d = static_cast<std::int64_t>(dim_);
    torch::Tensor W = torch::zeros({c, d}, torch::kFloat64), b = torch::zeros({c}, torch::kFloat64);
    if (init) {
      W.copy_(torch::tensor(init->weight, torch::kFloat64).view({c, d}));
      b.copy_(torch::tensor(init->bias, torch::kFloat64));
    }
    W.set_requires_grad(true);
    b.set_requires_grad(true);
    // Full-batch L-BFGS on a convex objective: converges to the unique optimum (what
    // scikit-learn's lbfgs solver finds), independent of the data order and the start.
    torch::optim::LBFGS opt({W, b}, torch::optim::LBFGSOptions(1.0)
                                        .max_iter(max_iter)
                                        .max_eval(max_iter * 5 / 4 + 1)
                                        .tolerance_grad(1e-9)
                                        .tolerance_change(1e-12)
                                        .history_size(20)
                                        .line_search_fn("strong_wolfe"));
    auto closure = [&] {
      torch::AutoGradMode enable(true);
      opt.zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(torch::addmm(b, x_, W.t()), y_) + l2 * W.pow(2).sum();
      loss.backward();
      return loss;
    };
    opt.step(closure);
    return make(W, b);
  }

  std::size_t n_classes_, dim_;
  torch::Tensor x_, y_, xa_, xa32_, yf_;
};

// The grid penalty with the best mean accuracy over `k` stratified folds of (x, y); the first
// (smallest) wins ties, as SentEval's argmax over its ascending grid. Within a fold the penalties
// are fitted from the largest down, each starting from the previous optimum, and each fold starts
// from the previous fold's fit at the largest penalty. Also returns the last fold's fit at the
// chosen penalty as a starting point for the final fit.
struct CvChoice {
  double l2 = 0;
  LogReg warm;
};
CvChoice choose_l2_by_cv(const Features& x, const std::vector<int>& y, std::size_t n_classes, const TransferOptions& o,
                         HessianCache* cache) {
  const auto folds = stratified_folds(y, o.inner_folds, o.seed);
  std::vector<std::size_t> order(o.l2_grid.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return o.l2_grid[a] > o.l2_grid[b]; });
  std::vector<double> sum(o.l2_grid.size(), 0.0);
  std::vector<LogReg> last(o.l2_grid.size());
  LogReg fold_start;
  bool have_start = false;
  for (const auto& test : folds) {
    const auto train = complement(y.size(), test);
    const Problem prob(take_rows(x, train), take(y, train), n_classes);
    const Features xte = take_rows(x, test);
    const std::vector<int> yte = take(y, test);
    const LogReg* start = have_start ? &fold_start : nullptr;
    for (std::size_t gi : order) {
      last[gi] = prob.fit(o.l2_grid[gi], o.max_iter, start, cache);
      start = &last[gi];
      sum[gi] += accuracy(last[gi].predict(xte), yte);
    }
    fold_start = last[order.front()];
    have_start = true;
  }
  std::size_t best = 0;
  for (std::size_t gi = 1; gi < sum.size(); ++gi) {
    // Ties (equal accuracy sums up to rounding) go to the smaller penalty.
    const bool better = sum[gi] > sum[best] + 1e-12 || (std::abs(sum[gi] - sum[best]) <= 1e-12 && o.l2_grid[gi] < o.l2_grid[best]);
    if (better) best = gi;
  }
  return {o.l2_grid[best], std::move(last[best])};
}

}  // namespace

std::vector<int> LogReg::predict(const Features& x) const {
  RANKEMB_CHECK(x.dim == dim, ErrorCode::Other, "features have dimension {}, the classifier {}", x.dim, dim);
  std::vector<int> out(x.rows);
  for (std::size_t i = 0; i < x.rows; ++i) {
    const auto r = x.row(i);
    double best = -std::numeric_limits<double>::infinity();
    for (std::size_t c = 0; c < n_classes; ++c) {
      double s = bias[c];
      for (std::size_t k = 0; k < dim; ++k) s += weight[c * dim + k] * r[k];
      if (s > best) {
        best = s;
        out[i] = static_cast<int>(c);
      }
    }
  }
  return out;
}

LogReg fit_logreg(const Features& x, const std::vector<int>& labels, std::size_t n_classes, const LogRegOptions& options) {
  return Problem(x, labels, n_classes).fit(options.l2, options.max_iter, options.warm_start);
}

std::vector<std::vector<std::size_t>> stratified_folds(const std::vector<int>& labels, std::size_t k, std::uint64_t seed) {
  RANKEMB_CHECK(k >= 2 && k <= labels.size(), ErrorCode::Other, "{} folds for {} examples", k, labels.size());
  std::mt19937_64 rng(seed);
  const int n_classes = labels.empty() ? 0 : *std::max_element(labels.begin(), labels.end()) + 1;
  std::vector<std::vector<std::size_t>> folds(k);
  std::size_t next = 0;  // continue dealing where the previous class stopped, to balance fold sizes
  for (int c = 0; c < n_classes; ++c) {
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == c) idx.push_back(i);
    std::shuffle(idx.begin(), idx.end(), rng);
    for (std::size_t i : idx) folds[next++ % k].push_back(i);
  }
  for (auto& f : folds) std::sort(f.begin(), f.end());
  return folds;
}

double accuracy(const std::vector<int>& predicted, const std::vector<int>& gold) {
  RANKEMB_CHECK(predicted.size() == gold.size() && !gold.empty(), ErrorCode::Other, "accuracy of {} predictions for {} labels",
                predicted.size(), gold.size());
  std::size_t ok = 0;
  for (std::size_t i = 0; i < gold.size(); ++i) ok += predicted[i] == gold[i];
  return static_cast<double>(ok) / static_cast<double>(gold.size());
}

double f1_score(const std::vector<int>& predicted, const std::vector<int>& gold, int positive) {
  RANKEMB_CHECK(predicted.size() == gold.size(), ErrorCode::Other, "F1 of {} predictions for {} labels", predicted.size(), gold.size());
  double tp = 0, fp = 0, fn = 0;
  for (std::size_t i = 0; i < gold.size(); ++i) {
    const bool p = predicted[i] == positive, g = gold[i] == positive;
    tp += p && g;
    fp += p && !g;
    fn += !p && g;
  }
  return tp == 0 ? 0.0 : 2 * tp / (2 * tp + fp + fn);
}

void add_texts(const TransferDataset& ds, EmbeddingTable& table) {
  for (const TransferSplit* s : {&ds.train, &ds.dev, &ds.test}) {
    for (const auto& t : s->text) table.add(t);
    for (const auto& t : s->text2) table.add(t);
  }
}

Features transfer_features(const TransferDataset& ds, const TransferSplit& split, const EmbeddingTable& table) {
  Features f;
  f.rows = split.size();
  const std::size_t d = table.dim();
  const bool pair = !split.text2.empty();
  RANKEMB_CHECK(split.text.size() == f.rows && (!pair || split.text2.size() == f.rows), ErrorCode::Other,
                "{}: {} texts / {} second texts for {} labels", ds.name, split.text.size(), split.text2.size(), f.rows);
  f.dim = pair ? 4 * d : d;
  f.values.reserve(f.rows * f.dim);
  for (std::size_t i = 0; i < f.rows; ++i) {
    const auto u = table.get(split.text[i]);
    f.values.insert(f.values.end(), u.begin(), u.end());
    if (!pair) continue;
    const auto v = table.get(split.text2[i]);
    f.values.insert(f.values.end(), v.begin(), v.end());
    for (std::size_t k = 0; k < d; ++k) f.values.push_back(std::abs(double(u[k]) - double(v[k])));
    for (std::size_t k = 0; k < d; ++k) f.values.push_back(double(u[k]) * double(v[k]));
  }
  return f;
}

TransferResult evaluate_transfer(const TransferDataset& ds, const EmbeddingTable& table, const TransferOptions& o) {
  RANKEMB_CHECK(!o.l2_grid.empty(), ErrorCode::Usage, "empty L2 penalty grid");
  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  TransferResult r;
  r.name = ds.name;
  const std::size_t n_classes = ds.classes.size();
  const std::size_t grid = o.l2_grid.size();
  HessianCache cache;  // shared by every fit of this task
  const Features xtr = transfer_features(ds, ds.train, table);
  const std::vector<int>& ytr = ds.train.label;
  if (ds.cross_validation) {
    r.n_train = ytr.size();
    double sum = 0;
    const auto folds = stratified_folds(ytr, o.folds, o.seed);
    for (const auto& test : folds) {
      const auto train = complement(ytr.size(), test);
      const Features x_in = take_rows(xtr, train);
      const std::vector<int> y_in = take(ytr, train);
      const CvChoice choice = choose_l2_by_cv(x_in, y_in, n_classes, o, &cache);
      r.l2.push_back(choice.l2);
      const LogReg clf = Problem(x_in, y_in, n_classes).fit(choice.l2, o.max_iter, &choice.warm, &cache);
      sum += accuracy(clf.predict(take_rows(xtr, test)), take(ytr, test));
    }
    r.accuracy = sum / static_cast<double>(folds.size());
    r.n_fits = folds.size() * (o.inner_folds * grid + 1);
    r.seconds = elapsed();
    log::info("{}: {} fits ({} exact Hessians) in {:.1f} s", ds.name, r.n_fits, cache.n_hessians, r.seconds);
    return r;
  }
  const Features xte = transfer_features(ds, ds.test, table);
  r.n_train = ytr.size();
  r.n_test = ds.test.size();
  const Problem prob(xtr, ytr, n_classes);
  double l2 = o.l2_grid.front();
  LogReg warm;  // the chosen penalty's fit on the whole training split: the final fit's start
  if (ds.dev.size() > 0) {
    const Features xdev = transfer_features(ds, ds.dev, table);
    std::vector<std::size_t> order(o.l2_grid.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return o.l2_grid[a] > o.l2_grid[b]; });
    std::vector<double> acc(o.l2_grid.size());
    std::vector<LogReg> fits(o.l2_grid.size());
    const LogReg* start = nullptr;
    for (std::size_t gi : order) {
      fits[gi] = prob.fit(o.l2_grid[gi], o.max_iter, start, &cache);
      start = &fits[gi];
      acc[gi] = accuracy(fits[gi].predict(xdev), ds.dev.label);
    }
    std::size_t best = 0;
    for (std::size_t gi = 1; gi < acc.size(); ++gi)
      if (acc[gi] > acc[best] || (acc[gi] == acc[best] && o.l2_grid[gi] < o.l2_grid[best])) best = gi;
    l2 = o.l2_grid[best];
    warm = std::move(fits[best]);
  } else {
    CvChoice choice = choose_l2_by_cv(xtr, ytr, n_classes, o, &cache);
    l2 = choice.l2;
    warm = std::move(choice.warm);
  }
  r.l2.push_back(l2);
  const LogReg clf = prob.fit(l2, o.max_iter, &warm, &cache);
  const auto pred = clf.predict(xte);
  r.accuracy = accuracy(pred, ds.test.label);
  if (ds.name == "MRPC") r.f1 = f1_score(pred, ds.test.label, 1);
  r.n_fits = (ds.dev.size() > 0 ? grid : o.inner_folds * grid) + 1;
  r.seconds = elapsed();
  log::info("{}: {} fits ({} exact Hessians) in {:.1f} s", ds.name, r.n_fits, cache.n_hessians, r.seconds);
  return r;
}

}  // namespace rankemb::eval

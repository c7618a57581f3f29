#include "rankemb/eval/transfer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "rankemb/util/error.h"

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

double fit_and_score(const Features& xtr, const std::vector<int>& ytr, const Features& xte, const std::vector<int>& yte,
                     std::size_t n_classes, double l2, int max_iter) {
  const LogReg clf = fit_logreg(xtr, ytr, n_classes, {.l2 = l2, .max_iter = max_iter});
  return accuracy(clf.predict(xte), yte);
}

// The grid penalty with the best mean accuracy over `k` stratified folds of (x, y); the first
// (smallest) wins ties.
double choose_l2_by_cv(const Features& x, const std::vector<int>& y, std::size_t n_classes, const TransferOptions& o) {
  const auto folds = stratified_folds(y, o.inner_folds, o.seed);
  double best = -1, best_l2 = o.l2_grid.front();
  for (double l2 : o.l2_grid) {
    double sum = 0;
    for (const auto& test : folds) {
      const auto train = complement(y.size(), test);
      sum += fit_and_score(take_rows(x, train), take(y, train), take_rows(x, test), take(y, test), n_classes, l2, o.max_iter);
    }
    const double mean = sum / static_cast<double>(folds.size());
    if (mean > best) {
      best = mean;
      best_l2 = l2;
    }
  }
  return best_l2;
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
  RANKEMB_CHECK(x.rows == labels.size() && x.values.size() == x.rows * x.dim, ErrorCode::Other,
                "logistic regression: {} rows of features ({} values, dim {}) for {} labels", x.rows, x.values.size(), x.dim,
                labels.size());
  RANKEMB_CHECK(x.rows > 0 && n_classes >= 2, ErrorCode::Other, "logistic regression needs rows ({}) and >= 2 classes ({})", x.rows,
                n_classes);
  std::vector<std::int64_t> y64;
  y64.reserve(labels.size());
  for (int l : labels) {
    RANKEMB_CHECK(l >= 0 && static_cast<std::size_t>(l) < n_classes, ErrorCode::Other, "label {} outside [0, {})", l, n_classes);
    y64.push_back(l);
  }
  torch::NoGradGuard outer_guard;  // only the closure below records gradients
  const torch::Tensor X = to_tensor(x);
  const torch::Tensor y = torch::tensor(y64, torch::kInt64);
  const auto c = static_cast<std::int64_t>(n_classes), d = static_cast<std::int64_t>(x.dim);
  torch::Tensor W = torch::zeros({c, d}, torch::kFloat64).set_requires_grad(true);
  torch::Tensor b = torch::zeros({c}, torch::kFloat64).set_requires_grad(true);
  // Full-batch L-BFGS on a convex objective from a zero start: no randomness, converges to the
  // unique optimum (what scikit-learn's lbfgs solver finds), independent of the data order.
  torch::optim::LBFGS opt({W, b}, torch::optim::LBFGSOptions(1.0)
                                      .max_iter(options.max_iter)
                                      .max_eval(options.max_iter * 5 / 4 + 1)
                                      .tolerance_grad(1e-9)
                                      .tolerance_change(1e-12)
                                      .history_size(20)
                                      .line_search_fn("strong_wolfe"));
  auto closure = [&] {
    torch::AutoGradMode enable(true);
    opt.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(torch::addmm(b, X, W.t()), y) + options.l2 * W.pow(2).sum();
    loss.backward();
    return loss;
  };
  opt.step(closure);
  LogReg out;
  out.n_classes = n_classes;
  out.dim = x.dim;
  const torch::Tensor w = W.detach().contiguous(), bb = b.detach().contiguous();
  out.weight.assign(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
  out.bias.assign(bb.data_ptr<double>(), bb.data_ptr<double>() + bb.numel());
  return out;
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
  TransferResult r;
  r.name = ds.name;
  const std::size_t n_classes = ds.classes.size();
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
      const double l2 = choose_l2_by_cv(x_in, y_in, n_classes, o);
      r.l2.push_back(l2);
      sum += fit_and_score(x_in, y_in, take_rows(xtr, test), take(ytr, test), n_classes, l2, o.max_iter);
    }
    r.accuracy = sum / static_cast<double>(folds.size());
    return r;
  }
  const Features xte = transfer_features(ds, ds.test, table);
  r.n_train = ytr.size();
  r.n_test = ds.test.size();
  double l2 = o.l2_grid.front();
  if (ds.dev.size() > 0) {
    const Features xdev = transfer_features(ds, ds.dev, table);
    double best = -1;
    for (double cand : o.l2_grid) {
      const double acc = fit_and_score(xtr, ytr, xdev, ds.dev.label, n_classes, cand, o.max_iter);
      if (acc > best) {
        best = acc;
        l2 = cand;
      }
    }
  } else {
    l2 = choose_l2_by_cv(xtr, ytr, n_classes, o);
  }
  r.l2.push_back(l2);
  const LogReg clf = fit_logreg(xtr, ytr, n_classes, {.l2 = l2, .max_iter = o.max_iter});
  const auto pred = clf.predict(xte);
  r.accuracy = accuracy(pred, ds.test.label);
  if (ds.name == "MRPC") r.f1 = f1_score(pred, ds.test.label, 1);
  return r;
}

}  // namespace rankemb::eval

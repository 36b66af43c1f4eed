#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "config/yaml_file.hpp"
#include "est/sampler.hpp"
#include "attention_fused.hpp"
#include "gemm.hpp"
#include "input_error.hpp"

namespace est {

namespace {

// Where a value came from: the config file (with its line) or a --set override.
struct Origin {
  std::string file;
  int line = -1;
  std::string describe() const { return line >= 0 ? file + ":" + std::to_string(line + 1) : file; }
};

template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::optional<bool>>) return "a boolean";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_unsigned_v<T>) return "a non-negative integer";
  else return "an integer";
}

template <class T>
T convert(const YAML::Node& n, const std::string& key, const Origin& at) {
  if (!n.IsScalar()) throw InputError(at.describe(), key, std::string("expected ") + type_name<T>());
  try {
    if constexpr (std::is_unsigned_v<T> && !std::is_same_v<T, bool>) {
      if (!n.Scalar().empty() && n.Scalar()[0] == '-') throw YAML::BadConversion(n.Mark());
    }
    if constexpr (std::is_same_v<T, std::optional<bool>>) return n.as<bool>();
    else return n.as<T>();
  } catch (const YAML::BadConversion&) {
    throw InputError(at.describe(), key,
                     std::string("expected ") + type_name<T>() + ", got '" + n.Scalar() + "'");
  }
}

using Setter = std::function<void(Config&, const YAML::Node&, const std::string&, const Origin&)>;

template <class S, class T>
std::pair<std::string, Setter> field(const char* key, S Config::*section, T S::*member) {
  return {key, [section, member](Config& c, const YAML::Node& n, const std::string& k, const Origin& at) {
            (c.*section).*member = convert<T>(n, k, at);
          }};
}

const std::map<std::string, Setter>& schema() {
  static const std::map<std::string, Setter> fields = {
      field("model.arch", &Config::model, &ModelConfig::arch),
      field("model.n_layer", &Config::model, &ModelConfig::n_layer),
      field("model.n_head", &Config::model, &ModelConfig::n_head),
      field("model.n_embd", &Config::model, &ModelConfig::n_embd),
      field("model.seq_len", &Config::model, &ModelConfig::seq_len),
      field("model.max_seq_len", &Config::model, &ModelConfig::max_seq_len),
      field("model.vocab_size", &Config::model, &ModelConfig::vocab_size),
      field("model.n_kv_head", &Config::model, &ModelConfig::n_kv_head),
      field("model.mlp_hidden", &Config::model, &ModelConfig::mlp_hidden),
      field("model.mlp_multiple_of", &Config::model, &ModelConfig::mlp_multiple_of),
      field("model.norm_eps", &Config::model, &ModelConfig::norm_eps),
      field("model.rope_theta", &Config::model, &ModelConfig::rope_theta),
      field("model.tie_embeddings", &Config::model, &ModelConfig::tie_embeddings),
      field("model.init", &Config::model, &ModelConfig::init),
      field("model.attention", &Config::model, &ModelConfig::attention),
      field("data.train", &Config::data, &DataConfig::train),
      field("data.val", &Config::data, &DataConfig::val),
      field("data.shuffle", &Config::data, &DataConfig::shuffle),
      field("train.batch_size", &Config::train, &TrainSection::batch_size),
      field("train.steps", &Config::train, &TrainSection::steps),
      field("train.lr", &Config::train, &TrainSection::lr),
      field("train.min_lr", &Config::train, &TrainSection::min_lr),
      field("train.warmup", &Config::train, &TrainSection::warmup),
      field("train.lr_schedule", &Config::train, &TrainSection::lr_schedule),
      field("train.decay_fraction", &Config::train, &TrainSection::decay_fraction),
      field("train.weight_decay", &Config::train, &TrainSection::weight_decay),
      field("train.decay_embeddings", &Config::train, &TrainSection::decay_embeddings),
      field("train.beta1", &Config::train, &TrainSection::beta1),
      field("train.beta2", &Config::train, &TrainSection::beta2),
      field("train.eps", &Config::train, &TrainSection::eps),
      field("train.grad_clip", &Config::train, &TrainSection::grad_clip),
      field("train.seed", &Config::train, &TrainSection::seed),
      field("train.eval_every", &Config::train, &TrainSection::eval_every),
      field("train.eval_batches", &Config::train, &TrainSection::eval_batches),
      field("train.log_every", &Config::train, &TrainSection::log_every),
      field("train.stop_after", &Config::train, &TrainSection::stop_after),
      field("est.schedule", &Config::est, &EstConfig::schedule),
      field("est.inactive", &Config::est, &EstConfig::inactive),
      field("est.layer_scaling", &Config::est, &EstConfig::layer_scaling),
      field("est.seed", &Config::est, &EstConfig::seed),
      field("est.strata", &Config::est, &EstConfig::strata),
      field("est.head_unit", &Config::est, &EstConfig::head_unit),
      field("parallel.tp", &Config::parallel, &ParallelConfig::tp),
      field("parallel.balance", &Config::parallel, &ParallelConfig::balance),
      field("parallel.balance_threshold", &Config::parallel, &ParallelConfig::balance_threshold),
      field("parallel.balance_patience", &Config::parallel, &ParallelConfig::balance_patience),
      field("parallel.slow_rank", &Config::parallel, &ParallelConfig::slow_rank),
      field("parallel.slow_factor", &Config::parallel, &ParallelConfig::slow_factor),
      field("parallel.bucket_mb", &Config::parallel, &ParallelConfig::bucket_mb),
      field("parallel.overlap", &Config::parallel, &ParallelConfig::overlap),
      field("output.dir", &Config::output, &OutputConfig::dir),
      field("output.save_model", &Config::output, &OutputConfig::save_model),
      field("output.on_checkpoint_error", &Config::output, &OutputConfig::on_checkpoint_error),
      field("output.checkpoint_every", &Config::output, &OutputConfig::checkpoint_every),
      field("output.keep", &Config::output, &OutputConfig::keep),
      field("output.trace", &Config::output, &OutputConfig::trace),
      field("runtime.threads", &Config::runtime, &RuntimeConfig::threads),
      field("runtime.gemm", &Config::runtime, &RuntimeConfig::gemm),
      field("runtime.precision", &Config::runtime, &RuntimeConfig::precision),
  };
  return fields;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string unknown_key_message(const std::string& key) {
  std::string best;
  size_t best_d = 4;  // suggest only near misses
  for (const auto& [k, setter] : schema()) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) { best_d = d; best = k; }
  }
  return best.empty() ? "unknown key" : "unknown key (did you mean '" + best + "'?)";
}

// Bookkeeping while reading: the origin of every key that was set, for later range checks.
struct Reader {
  Config& cfg;
  std::map<std::string, Origin> origins;

  void set(const std::string& key, const YAML::Node& value, const Origin& at) {
    const auto it = schema().find(key);
    if (it == schema().end()) throw InputError(at.describe(), key, unknown_key_message(key));
    it->second(cfg, value, key, at);
    origins[key] = at;
  }

  void walk(const YAML::Node& node, const std::string& prefix, const std::string& file) {
    for (const auto& kv : node) {
      const std::string key = prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar();
      const Origin at{file, kv.second.Mark().line};
      if (kv.second.IsMap()) {
        if (schema().count(key)) throw InputError(at.describe(), key, "expected a value, got a mapping");
        walk(kv.second, key, file);
      } else {
        set(key, kv.second, at);
      }
    }
  }

  Origin where(const std::string& key) const {
    const auto it = origins.find(key);
    return it == origins.end() ? Origin{cfg.path, -1} : it->second;
  }

  void require(bool ok, const std::string& key, const std::string& message) const {
    if (!ok) throw InputError(where(key).describe(), key, message);
  }
};

void set_path(YAML::Node root, const std::string& key, const YAML::Node& value) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
  YAML::Node node = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child = node[parts[i]];
    if (!child.IsMap()) child = YAML::Node(YAML::NodeType::Map);
    node[parts[i]] = child;
    node.reset(child);
  }
  node[parts.back()] = value;
}

// The keys only one architecture has: Llama's are GPT-2's fixed values there.
void validate_architecture(const Reader& r, Arch arch) {
  const ModelConfig& m = r.cfg.model;
  if (arch == Arch::gpt2) {
    r.require(m.n_kv_head == 0 || m.n_kv_head == m.n_head, "model.n_kv_head",
              "GPT-2 has one key/value head per query head (leave it unset, or set model.arch: llama)");
    r.require(m.mlp_hidden == 0 || m.mlp_hidden == 4 * m.n_embd, "model.mlp_hidden",
              "GPT-2's MLP has 4 * n_embd neurons (leave it unset, or set model.arch: llama)");
    r.require(m.tie_embeddings.value_or(true), "model.tie_embeddings", "GPT-2's LM head is the token embedding");
    return;
  }
  r.require(m.n_kv_head >= 0 && (m.n_kv_head == 0 || m.n_head % m.n_kv_head == 0), "model.n_kv_head",
            "must divide model.n_head (" + std::to_string(m.n_head) + "): query heads share key/value heads in groups");
  r.require((m.n_embd / std::max(m.n_head, 1)) % 2 == 0, "model.n_embd",
            "n_embd / n_head must be even: RoPE rotates pairs of a head's dimensions");
  r.require(m.mlp_multiple_of >= 1, "model.mlp_multiple_of", "must be >= 1");
  r.require(m.mlp_hidden >= 0 && m.mlp_hidden <= std::numeric_limits<int>::max() / 2, "model.mlp_hidden",
            "must be in [0, " + std::to_string(std::numeric_limits<int>::max() / 2) + "] (0: Llama's rule)");
  r.require(m.norm_eps > 0, "model.norm_eps", "must be > 0");
  r.require(m.rope_theta > 1, "model.rope_theta", "must be > 1");
}

// A seed, or a model file of the architecture's own format.
void validate_init(const Reader& r, Arch arch) {
  const Config& c = r.cfg;
  if (c.init_from_llmc() || c.init_from_llama2c()) {
    const bool llmc = c.init_from_llmc();
    r.require(!(llmc ? c.init_llmc_path() : c.init_llama2c_path()).empty(), "model.init",
              llmc ? "llmc: needs a path" : "llama2c: needs a path");
    r.require(!llmc || arch == Arch::gpt2, "model.init",
              "llmc: files hold GPT-2 models; a Llama (model.arch: llama) starts from llama2c:PATH");
    r.require(llmc || arch == Arch::llama, "model.init",
              "llama2c: files hold Llama models (model.arch: llama); GPT-2 starts from llmc:PATH");
    return;
  }
  if (c.model.init.empty()) return;
  const bool digits = std::all_of(c.model.init.begin(), c.model.init.end(), ::isdigit);
  r.require(digits, "model.init", "expected a seed (integer), llmc:PATH or llama2c:PATH, got '" + c.model.init + "'");
  errno = 0;
  std::strtoull(c.model.init.c_str(), nullptr, 10);
  r.require(errno != ERANGE, "model.init", "the seed " + c.model.init + " does not fit in 64 bits");
}

void validate(const Reader& r) {
  const Config& c = r.cfg;
  Arch arch = Arch::gpt2;
  r.require(parse_arch(c.model.arch, arch), "model.arch", "unknown architecture '" + c.model.arch + "' (gpt2, llama)");
  r.require(c.model.n_layer >= 1, "model.n_layer", "must be >= 1");
  r.require(c.model.n_head >= 1, "model.n_head", "must be >= 1");
  r.require(c.model.n_embd >= 1 && c.model.n_embd % c.model.n_head == 0, "model.n_embd",
            "must be a positive multiple of model.n_head (" + std::to_string(c.model.n_head) + ")");
  // The MLP's width, 4 * n_embd neurons, is an int wherever it is counted (layout, schedule checks, sampler).
  r.require(c.model.n_embd <= std::numeric_limits<int>::max() / 4, "model.n_embd",
            "must be at most " + std::to_string(std::numeric_limits<int>::max() / 4) +
                " (the MLP has up to 4 * n_embd neurons)");
  validate_architecture(r, arch);
  r.require(c.model.seq_len >= 1, "model.seq_len", "must be >= 1");
  r.require(c.model.max_seq_len == 0 || c.model.max_seq_len >= c.model.seq_len, "model.max_seq_len",
            "must be >= model.seq_len (" + std::to_string(c.model.seq_len) + ")");
  r.require(c.model.vocab_size >= 2 && c.model.vocab_size <= 65536, "model.vocab_size",
            "must be in [2, 65536] (tokens are uint16)");
  validate_init(r, arch);
  AttentionKind attention = AttentionKind::materialized;
  r.require(parse_attention_kind(c.model.attention, attention), "model.attention",
            "unknown attention '" + c.model.attention + "' (materialized, fused)");
  const int head_size = c.model.n_embd / c.model.n_head;
  r.require(attention != AttentionKind::fused || head_size <= kFusedAttentionMaxHeadSize, "model.attention",
            "fused attention takes head sizes up to " + std::to_string(kFusedAttentionMaxHeadSize) +
                " (n_embd / n_head is " + std::to_string(head_size) + "); use materialized");
  const auto& t = c.train;
  r.require(t.batch_size >= 1, "train.batch_size", "must be >= 1");
  r.require(t.steps >= 1, "train.steps", "must be >= 1");
  r.require(t.lr > 0, "train.lr", "must be > 0");
  r.require(t.min_lr >= 0 && t.min_lr <= t.lr, "train.min_lr", "must be in [0, train.lr]");
  r.require(t.warmup >= 0, "train.warmup", "must be >= 0");
  r.require(t.lr_schedule == "cosine" || t.lr_schedule == "wsd", "train.lr_schedule",
            "expected cosine or wsd, got '" + t.lr_schedule + "'");
  r.require(t.decay_fraction > 0 && t.decay_fraction <= 1, "train.decay_fraction", "must be in (0, 1]");
  r.require(t.weight_decay >= 0, "train.weight_decay", "must be >= 0");
  r.require(t.beta1 >= 0 && t.beta1 < 1, "train.beta1", "must be in [0, 1)");
  r.require(t.beta2 >= 0 && t.beta2 < 1, "train.beta2", "must be in [0, 1)");
  r.require(t.eps > 0, "train.eps", "must be > 0");
  r.require(t.grad_clip >= 0, "train.grad_clip", "must be >= 0 (0 disables clipping)");
  r.require(t.eval_every >= 0, "train.eval_every", "must be >= 0");
  r.require(t.eval_batches >= 1, "train.eval_batches", "must be >= 1");
  r.require(t.log_every >= 1, "train.log_every", "must be >= 1");
  r.require(t.stop_after >= 0, "train.stop_after", "must be >= 0 (0: run to the end)");
  r.require(c.output.checkpoint_every >= 0, "output.checkpoint_every", "must be >= 0 (0: only when stopping early)");
  r.require(c.output.keep >= 1, "output.keep", "must be >= 1");
  r.require(c.output.on_checkpoint_error == "stop" || c.output.on_checkpoint_error == "warn",
            "output.on_checkpoint_error", "expected stop or warn, got '" + c.output.on_checkpoint_error + "'");
  r.require(c.est.inactive == "skip" || c.est.inactive == "zero_grad", "est.inactive",
            "expected skip or zero_grad, got '" + c.est.inactive + "'");
  r.require(c.est.layer_scaling == "none" || c.est.layer_scaling == "inverse", "est.layer_scaling",
            "expected none or inverse, got '" + c.est.layer_scaling + "'");
  r.require(c.est.seed >= -1, "est.seed", "must be >= 0 (or -1: train.seed)");
  r.require(c.est.strata >= 0, "est.strata", "must be >= 0 (0: the default)");
  r.require(c.est.head_unit == "kv_group" || c.est.head_unit == "query", "est.head_unit",
            "expected kv_group or query, got '" + c.est.head_unit + "'");
  const auto& p = c.parallel;
  r.require(p.tp >= 1, "parallel.tp", "must be >= 1");
  const ModelShape shape = c.shape();
  if (shape.kv_heads() == shape.n_head)
    r.require(c.model.n_head % p.tp == 0, "parallel.tp",
              "must divide model.n_head (" + std::to_string(c.model.n_head) + "): heads are split across the TP ranks");
  else
    r.require(shape.kv_heads() % p.tp == 0, "parallel.tp",
              "must divide model.n_kv_head (" + std::to_string(shape.kv_heads()) +
                  "): a TP rank holds whole key/value groups with their query heads");
  r.require(shape.neurons() % p.tp == 0, "parallel.tp",
            "must divide the MLP's " + std::to_string(shape.neurons()) + " neurons");
  const HeadUnits units = head_units(shape, c.head_unit());
  r.require(units.count % c.est_strata() == 0, "est.strata",
            "must divide the " + std::to_string(units.count) +
                (units.size > 1 ? " key/value groups (model.n_kv_head)" : " heads (model.n_head)"));
  r.require(shape.neurons() % c.est_strata() == 0, "est.strata",
            "must divide the MLP's " + std::to_string(shape.neurons()) + " neurons");
  const int strata = c.est_strata();
  r.require(strata_fit_ranks(strata, p.tp), "est.strata",
            std::to_string(strata) + (c.est.strata > 0 ? "" : " (the default)") + " strata over parallel.tp = " +
                std::to_string(p.tp) + ": a rank must hold whole strata, and more than one only when their number " +
                "is a power of two; set est.strata to " + std::to_string(p.tp) +
                " or to a power of two that it divides");
  r.require(p.balance_threshold >= 1.0, "parallel.balance_threshold", "must be >= 1 (max/mean compute time)");
  r.require(p.balance_patience >= 1, "parallel.balance_patience", "must be >= 1");
  r.require(p.slow_rank >= -1, "parallel.slow_rank", "must be a rank, or -1 for none");
  r.require(p.slow_factor >= 1.0, "parallel.slow_factor", "must be >= 1");
  r.require(p.bucket_mb >= 0 && std::isfinite(p.bucket_mb), "parallel.bucket_mb",
            "must be >= 0 (MiB per bucket of the gradient's sum; 0: one bucket)");
  r.require(c.runtime.threads >= 0, "runtime.threads", "must be >= 0 (0: all cores)");
  gemm::Backend backend;
  r.require(gemm::parse_backend(c.runtime.gemm, backend), "runtime.gemm",
            "unknown GEMM backend '" + c.runtime.gemm + "' (auto, onednn, cblas, cublas)");
  r.require(gemm::backend_available(backend), "runtime.gemm",
            "GEMM backend '" + c.runtime.gemm + "' is not in this build");
  gemm::Precision precision;
  r.require(gemm::parse_precision(c.runtime.precision, precision), "runtime.precision",
            "unknown precision '" + c.runtime.precision + "' (fp32, tf32, bf16)");
}

Config read_config(YAML::Node root, const std::string& path, const std::vector<std::string>& overrides) {
  Config cfg;
  cfg.path = path;
  if (!root.IsMap()) throw InputError(path, "yaml", "the top level must be a mapping of sections");

  Reader reader{cfg, {}};
  reader.walk(root, "", path);
  for (const std::string& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) throw InputError("--set", o, "expected key=value");
    const std::string key = o.substr(0, eq);
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw InputError("--set", key, e.msg);
    }
    if (value.IsNull()) value = YAML::Node(std::string());
    reader.set(key, value, Origin{"--set", -1});
    set_path(root, key, value);
  }
  if (cfg.output.dir.empty()) cfg.output.dir = "runs/" + std::filesystem::path(path).stem().string();
  validate(reader);
  YAML::Emitter out;
  out << root;
  cfg.yaml_text = out.c_str();
  return cfg;
}

}  // namespace

uint64_t Config::init_seed() const {
  return model.init.empty() || init_from_llmc() || init_from_llama2c() ? train.seed : std::stoull(model.init);
}

int Config::est_strata() const {
  if (est.strata > 0) return est.strata;
  const ModelShape s = shape();
  const int units = head_units(s, head_unit()).count;
  int strata = 1;
  while (strata < 8 && units % (2 * strata) == 0 && s.neurons() % (2 * strata) == 0) strata *= 2;
  return strata;
}

ModelShape Config::shape() const {
  ModelShape s;
  s.max_seq_len = model.max_seq_len > 0 ? model.max_seq_len : model.seq_len;
  s.vocab_size = model.vocab_size;
  s.padded_vocab_size = pad_vocab(model.vocab_size);
  s.n_layer = model.n_layer;
  s.n_head = model.n_head;
  s.n_embd = model.n_embd;
  if (model.arch != "llama") return s;
  s.arch = Arch::llama;
  s.n_kv_head = model.n_kv_head;
  s.mlp_hidden = model.mlp_hidden > 0 ? model.mlp_hidden : llama_mlp_hidden(model.n_embd, model.mlp_multiple_of);
  s.norm_eps = float(model.norm_eps);
  s.rope_theta = float(model.rope_theta);
  s.tie_embeddings = model.tie_embeddings.value_or(false);
  return s;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return read_config(load_yaml_file(path, "config"), path, overrides);
}

Config parse_config(const std::string& text, const std::string& where) {
  return read_config(parse_yaml(text, where), where, {});
}

}  // namespace est

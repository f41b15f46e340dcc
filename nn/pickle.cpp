#include "nn/pickle.h"

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "tensor/error.h"

namespace ember::nn::pickle {

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::none: return "None";
    case Kind::boolean: return "a bool";
    case Kind::integer: return "an integer";
    case Kind::big_integer: return "a big integer";
    case Kind::floating: return "a float";
    case Kind::string: return "a string";
    case Kind::bytes: return "bytes";
    case Kind::tuple: return "a tuple";
    case Kind::list: return "a list";
    case Kind::dict: return "a dict";
    case Kind::set: return "a set";
    case Kind::global: return "a global";
    case Kind::object: return "an object";
  }
  return "?";
}

Ref Document::add(Value v) {
  EMBER_CHECK(values_.size() < max_values_, "pickle: more than ", max_values_, " values");
  values_.push_back(std::move(v));
  return static_cast<Ref>(values_.size() - 1);
}

std::string Document::describe(Ref r) const {
  const Value& v = values_[r];
  auto quoted = [](const std::string& s) { return "'" + (s.size() > 60 ? s.substr(0, 60) + "..." : s) + "'"; };
  switch (v.kind) {
    case Kind::boolean: return v.integer ? "True" : "False";
    case Kind::integer: return "an integer " + std::to_string(v.integer);
    case Kind::floating: return "a float " + std::to_string(v.floating);
    case Kind::string: return "a string " + quoted(v.text);
    case Kind::bytes: return "bytes of length " + std::to_string(v.text.size());
    case Kind::tuple:
    case Kind::list:
    case Kind::set: return std::string(kind_name(v.kind)) + " of " + std::to_string(v.items.size()) + " items";
    case Kind::dict: return "a dict of " + std::to_string(v.items.size() / 2) + " items";
    case Kind::global: return "the global " + quoted(v.text);
    case Kind::object: return "an object " + v.text;
    default: return kind_name(v.kind);
  }
}

namespace {

// The opcodes refused on purpose, named in the error.
const char* refused_opcode_name(uint8_t op) {
  switch (op) {
    case 'I': return "INT (text protocol 0)";
    case 'L': return "LONG (text protocol 0)";
    case 'S': return "STRING (text protocol 0)";
    case 'V': return "UNICODE (text protocol 0)";
    case 'F': return "FLOAT (text protocol 0)";
    case 'p': return "PUT (text protocol 0)";
    case 'g': return "GET (text protocol 0)";
    case 'P': return "PERSID (text protocol 0)";
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x92: return "NEWOBJ_EX";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

class Machine {
 public:
  Machine(Document& doc, std::span<const uint8_t> bytes, const Hooks& hooks, const std::string& what,
          const Limits& limits, size_t base)
      : doc_(doc), in_(bytes), hooks_(hooks), what_(what), limits_(limits), base_(base) {}

  Unpickled run() {
    while (true) {
      EMBER_CHECK(pos_ < in_.size(), what_, ": truncated pickle (ends at byte ", base_ + pos_, " without STOP)");
      op_at_ = pos_;
      op_ = in_[pos_++];
      if (op_ == '.') return {pop(), pos_};
      step();
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", op_);
    throw make_error(what_, ": pickle opcode ", buf, " at byte ", base_ + op_at_, ": ", why);
  }

  // ---- input --------------------------------------------------------------------------------
  const uint8_t* take(uint64_t n) {
    if (n > in_.size() - pos_)
      fail("needs " + std::to_string(n) + " bytes but only " + std::to_string(in_.size() - pos_) +
           " are left (truncated or corrupt pickle)");
    const uint8_t* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint64_t read_le(int n) {
    const uint8_t* p = take(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::string read_string(uint64_t n) {
    if (n > limits_.max_string) fail("a string of " + std::to_string(n) + " bytes is over the limit");
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  std::string read_line() {  // GLOBAL's "module\n" and "name\n"
    for (size_t i = pos_; i < in_.size() && i - pos_ < 1024; ++i)
      if (in_[i] == '\n') {
        std::string s(reinterpret_cast<const char*>(in_.data() + pos_), i - pos_);
        pos_ = i + 1;
        return s;
      }
    fail("GLOBAL without a newline-terminated name (truncated or corrupt pickle)");
  }

  // ---- the stack and the marks --------------------------------------------------------------
  size_t frame_base() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Ref r) {
    if (stack_.size() >= limits_.max_stack) fail("stack deeper than " + std::to_string(limits_.max_stack));
    stack_.push_back(r);
  }
  Ref push_new(Value v) {
    Ref r = doc_.add(std::move(v));
    push(r);
    return r;
  }
  Ref pop() {
    if (stack_.size() <= frame_base()) fail("stack underflow (corrupt pickle)");
    Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  Ref top() {
    if (stack_.size() <= frame_base()) fail("stack underflow (corrupt pickle)");
    return stack_.back();
  }
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to (corrupt pickle)");
    size_t base = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(stack_.begin() + static_cast<ptrdiff_t>(base), stack_.end());
    stack_.resize(base);
    return items;
  }
  Value& expect(Ref r, Kind kind, const char* op) {
    Value& v = doc_[r];
    if (v.kind != kind) fail(std::string(op) + " on " + doc_.describe(r) + ", expected " + kind_name(kind));
    return v;
  }

  void push_integer(int64_t v) { push_new(Value{.kind = Kind::integer, .integer = v}); }
  // LONG1/LONG4: n bytes of little-endian two's complement.
  void push_long(uint64_t n) {
    const uint8_t* p = take(n);
    if (n <= 8) {
      uint64_t v = 0;
      for (uint64_t i = n; i-- > 0;) v = (v << 8) | p[i];
      if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
      push_integer(static_cast<int64_t>(v));
    } else {
      push_new(Value{.kind = Kind::big_integer, .text = std::string(reinterpret_cast<const char*>(p), n)});
    }
  }
  void push_text(Kind kind, uint64_t n) { push_new(Value{.kind = kind, .text = read_string(n)}); }
  void push_global(const std::string& module, const std::string& name) {
    // Python 2 module names, as Python 3 resolves them (pickle's fix_imports) and as errors name them.
    const std::string qualified = (module == "__builtin__" ? "builtins" : module == "copy_reg" ? "copyreg" : module) + "." + name;
    if (!hooks_.allow_global || !hooks_.allow_global(qualified))
      throw make_error(what_, ": refusing global '", qualified, "' (pickle byte ", base_ + op_at_,
                       "): only the globals a state dict of tensors needs are allowed, and loading never runs code");
    push_new(Value{.kind = Kind::global, .text = qualified});
  }
  void memo_put(uint64_t index) {
    Ref r = top();
    auto it = memo_.find(index);
    if (it != memo_.end()) {
      it->second = r;
      return;
    }
    if (memo_.size() >= limits_.max_memo) fail("more than " + std::to_string(limits_.max_memo) + " memo entries");
    memo_.emplace(index, r);
  }
  void memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored (corrupt pickle)");
    push(it->second);
  }
  void set_items(Ref dict_ref, const std::vector<Ref>& kv) {
    if (kv.size() % 2) fail("SETITEMS with an odd number of items");
    Value& d = expect(dict_ref, Kind::dict, "SETITEM");
    d.items.insert(d.items.end(), kv.begin(), kv.end());
  }
  void append_items(Ref list_ref, const std::vector<Ref>& items, Kind kind, const char* op) {
    Value& l = expect(list_ref, kind, op);
    l.items.insert(l.items.end(), items.begin(), items.end());
  }
  Ref call(Ref callable, Ref args, const char* op) {
    if (doc_[callable].kind != Kind::global) fail(std::string(op) + " on " + doc_.describe(callable));
    if (!hooks_.reduce) fail(std::string(op) + " is not allowed here");
    return hooks_.reduce(doc_, callable, args);
  }

  void step() {
    switch (op_) {
      case 0x80: {  // PROTO
        uint64_t v = read_le(1);
        if (v > 5) fail("pickle protocol " + std::to_string(v) + " (this reader knows 0-5)");
        return;
      }
      case 0x95: {  // FRAME: a length prefix for what follows; only checked
        uint64_t n = read_le(8);
        if (n > in_.size() - pos_) fail("a frame of " + std::to_string(n) + " bytes runs past the end (truncated?)");
        return;
      }
      case '(':
        if (marks_.size() >= limits_.max_marks) fail("nesting deeper than " + std::to_string(limits_.max_marks) + " MARKs");
        marks_.push_back(stack_.size());
        return;
      case '0':  // POP: the top item, or the mark when the frame is empty
        if (stack_.size() > frame_base()) stack_.pop_back();
        else pop_mark();
        return;
      case '1': pop_mark(); return;
      case '2': push(top()); return;
      case '}': push_new(Value{.kind = Kind::dict}); return;
      case ']': push_new(Value{.kind = Kind::list}); return;
      case ')': push_new(Value{.kind = Kind::tuple}); return;
      case 0x8f: push_new(Value{.kind = Kind::set}); return;
      case 't': push_new(Value{.kind = Kind::tuple, .items = pop_mark()}); return;
      case 'l': push_new(Value{.kind = Kind::list, .items = pop_mark()}); return;
      case 0x91: push_new(Value{.kind = Kind::set, .items = pop_mark()}); return;
      case 'd': {
        std::vector<Ref> kv = pop_mark();
        if (kv.size() % 2) fail("DICT with an odd number of items");
        push_new(Value{.kind = Kind::dict, .items = std::move(kv)});
        return;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        size_t n = op_ - 0x84;
        std::vector<Ref> items(n);
        for (size_t i = n; i-- > 0;) items[i] = pop();
        push_new(Value{.kind = Kind::tuple, .items = std::move(items)});
        return;
      }
      case 'a': {
        Ref v = pop();
        append_items(top(), {v}, Kind::list, "APPEND");
        return;
      }
      case 'e': {
        std::vector<Ref> items = pop_mark();
        append_items(top(), items, Kind::list, "APPENDS");
        return;
      }
      case 0x90: {  // ADDITEMS
        std::vector<Ref> items = pop_mark();
        append_items(top(), items, Kind::set, "ADDITEMS");
        return;
      }
      case 's': {
        Ref v = pop(), k = pop();
        set_items(top(), {k, v});
        return;
      }
      case 'u': {
        std::vector<Ref> kv = pop_mark();
        set_items(top(), kv);
        return;
      }
      case 'K': push_integer(static_cast<int64_t>(read_le(1))); return;
      case 'M': push_integer(static_cast<int64_t>(read_le(2))); return;
      case 'J': push_integer(static_cast<int32_t>(static_cast<uint32_t>(read_le(4)))); return;
      case 0x8a: push_long(read_le(1)); return;
      case 0x8b: {
        uint64_t n = read_le(4);
        if (n > 0x7FFFFFFF) fail("LONG4 with a negative length");
        if (n > 4096) fail("an integer of " + std::to_string(n) + " bytes is over the limit");
        push_long(n);
        return;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
        double d;
        std::memcpy(&d, &bits, 8);
        push_new(Value{.kind = Kind::floating, .floating = d});
        return;
      }
      case 'N': push_new(Value{.kind = Kind::none}); return;
      case 0x88: push_new(Value{.kind = Kind::boolean, .integer = 1}); return;
      case 0x89: push_new(Value{.kind = Kind::boolean, .integer = 0}); return;
      case 'X': push_text(Kind::string, read_le(4)); return;
      case 0x8c: push_text(Kind::string, read_le(1)); return;
      case 0x8d: push_text(Kind::string, read_le(8)); return;
      case 'T': {
        uint64_t n = read_le(4);
        if (n > 0x7FFFFFFF) fail("BINSTRING with a negative length");
        push_text(Kind::string, n);
        return;
      }
      case 'U': push_text(Kind::string, read_le(1)); return;
      case 'B': push_text(Kind::bytes, read_le(4)); return;
      case 'C': push_text(Kind::bytes, read_le(1)); return;
      case 0x8e:
      case 0x96: push_text(Kind::bytes, read_le(8)); return;
      case 'q': memo_put(read_le(1)); return;
      case 'r': memo_put(read_le(4)); return;
      case 0x94: memo_put(memo_.size()); return;
      case 'h': memo_get(read_le(1)); return;
      case 'j': memo_get(read_le(4)); return;
      case 'c': {
        std::string module = read_line();
        std::string name = read_line();
        push_global(module, name);
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        Ref name = pop(), module = pop();
        push_global(expect(module, Kind::string, "STACK_GLOBAL").text, expect(name, Kind::string, "STACK_GLOBAL").text);
        return;
      }
      case 'R': {
        Ref args = pop(), callable = pop();
        push(call(callable, args, "REDUCE"));
        return;
      }
      case 0x81: {
        Ref args = pop(), cls = pop();
        push(call(cls, args, "NEWOBJ"));
        return;
      }
      case 'b': {
        Ref state = pop();
        if (!hooks_.build) fail("BUILD is not allowed here");
        hooks_.build(doc_, top(), state);
        return;
      }
      case 'Q': {
        Ref pid = pop();
        if (!hooks_.persistent_load) fail("a persistent id (BINPERSID) is not allowed here");
        push(hooks_.persistent_load(doc_, pid));
        return;
      }
      default:
        if (const char* name = refused_opcode_name(op_)) fail(std::string("opcode ") + name + " is not supported");
        fail("unknown opcode (not a pickle, or corrupt)");
    }
  }

  Document& doc_;
  std::span<const uint8_t> in_;
  const Hooks& hooks_;
  const std::string& what_;
  const Limits& limits_;
  size_t base_;
  size_t pos_ = 0, op_at_ = 0;
  uint8_t op_ = 0;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
};

}  // namespace

Unpickled unpickle(Document& doc, std::span<const uint8_t> bytes, const Hooks& hooks, const std::string& what,
                   const Limits& limits, size_t base_offset) {
  return Machine(doc, bytes, hooks, what, limits, base_offset).run();
}

}  // namespace ember::nn::pickle

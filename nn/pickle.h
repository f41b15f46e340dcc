// A restricted unpickler: reads Python pickles (protocols 2-5, and the binary opcodes of older
// ones) into plain values, and never runs code.
//
// A pickle is a program for a small stack machine. Each opcode is one byte, some followed by an
// argument; the program ends with STOP ('.'), whose value is the result:
//
//   \x80 PROTO n             \x95 FRAME len (ignored)     (  MARK: remember the stack height
//   }  EMPTY_DICT  ]  EMPTY_LIST  )  EMPTY_TUPLE  \x8f EMPTY_SET
//   t  TUPLE (items since MARK)   \x85 \x86 \x87 TUPLE1..3   l LIST   d DICT   \x91 FROZENSET
//   a  APPEND  e APPENDS  s SETITEM  u SETITEMS  \x90 ADDITEMS   0 POP  1 POP_MARK  2 DUP
//   K BININT1  M BININT2  J BININT  \x8a LONG1  \x8b LONG4  G BINFLOAT (big-endian double)
//   N NONE  \x88 NEWTRUE  \x89 NEWFALSE
//   X BINUNICODE  \x8c SHORT_BINUNICODE  \x8d BINUNICODE8  T BINSTRING  U SHORT_BINSTRING (Python 2)
//   B BINBYTES  C SHORT_BINBYTES  \x8e BINBYTES8  \x96 BYTEARRAY8
//   q BINPUT  r LONG_BINPUT  \x94 MEMOIZE  h BINGET  j LONG_BINGET  (the memo: values by number)
//   c GLOBAL "module\nname\n"  \x93 STACK_GLOBAL: a reference to a Python object by name
//   R REDUCE (callable, args)  \x81 NEWOBJ (class, args)  b BUILD (object, state)
//   Q BINPERSID: an object the pickle refers to by id (torch: a tensor's storage)
//
// Only GLOBAL/REDUCE/NEWOBJ/BUILD could make Python run code. Here a global is a name checked
// against the caller's allow-list (anything else is refused with an Error naming it, e.g.
// "refusing global 'posix.system'"), and REDUCE, NEWOBJ, BUILD and BINPERSID call the caller's
// hooks, which build inert values. Text-protocol opcodes, INST/OBJ, extension codes and
// out-of-band buffers are refused.
//
// Values live in a flat arena (Document) and refer to each other by index, so deep nesting or a
// list that contains itself cannot overflow the C++ stack or leak; code that walks values must
// bound its own depth. Limits (MARK nesting, stack, memo, value count, string length) turn
// hostile input into clear errors; every length is checked against the bytes left first.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace ember::nn::pickle {

using Ref = uint32_t;  // a value's index in its Document

enum class Kind : uint8_t {
  none, boolean, integer, big_integer, floating, string, bytes, tuple, list, dict, set, global, object
};
const char* kind_name(Kind kind);

struct Value {
  Kind kind = Kind::none;
  int64_t integer = 0;     // boolean, integer; object: a handle the hooks chose
  double floating = 0.0;   // floating
  std::string text{};      // string, bytes; big_integer: little-endian two's-complement bytes;
                           // global: "module.name"; object: its type name
  std::vector<Ref> items{};  // tuple, list, set; dict: key0, value0, key1, value1, ...
};

struct Limits {
  size_t max_values = size_t{1} << 21;   // values created
  size_t max_stack = size_t{1} << 20;    // stack entries
  size_t max_marks = 256;                // MARK nesting
  size_t max_memo = size_t{1} << 20;     // memo entries
  uint64_t max_string = uint64_t{1} << 26;  // bytes in one string (64 MiB)
};

class Document {
 public:
  explicit Document(size_t max_values = Limits{}.max_values) : max_values_(max_values) {}
  const Value& operator[](Ref r) const { return values_[r]; }
  Value& operator[](Ref r) { return values_[r]; }
  Ref add(Value v);  // throws when the document is full
  size_t size() const { return values_.size(); }

  // Short descriptions for errors: "an integer 3", "a string 'epoch'", "a tuple of 4 items".
  std::string describe(Ref r) const;

 private:
  std::vector<Value> values_;
  size_t max_values_;
};

// What the caller decides. Unset hooks refuse their opcode.
struct Hooks {
  std::function<bool(const std::string& global)> allow_global;           // "collections.OrderedDict"
  std::function<Ref(Document&, Ref pid)> persistent_load;                // BINPERSID
  std::function<Ref(Document&, Ref callable, Ref args)> reduce;          // REDUCE, NEWOBJ (callable: a global)
  std::function<void(Document&, Ref object, Ref state)> build;           // BUILD
};

struct Unpickled {
  Ref root;     // the value STOP returned
  size_t end;   // bytes consumed, STOP included (pickles may follow each other)
};

// Runs the pickle at the start of `bytes`. Errors name `what`, the opcode and its byte offset
// (counted from `base_offset`, so an error can point into the enclosing file).
Unpickled unpickle(Document& doc, std::span<const uint8_t> bytes, const Hooks& hooks, const std::string& what,
                   const Limits& limits = {}, size_t base_offset = 0);

}  // namespace ember::nn::pickle

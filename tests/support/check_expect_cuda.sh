#!/bin/sh
# EMBER_EXPECT_CUDA=1 turns a visible CUDA skip into a failure (EMBER_REQUIRE_CUDA in
# tests/support/test_util.h). Usage: check_expect_cuda.sh TEST_BINARY (one built with that macro;
# ctest passes test_tensor_core). Without a GPU the CUDA test must be skipped by default, fail
# with EMBER_EXPECT_CUDA=1, be skipped with EMBER_EXPECT_CUDA=0, and fail on a value that is not
# a switch; with a GPU it must pass either way.
bin=$1
filter='Cuda.CopiesRoundTripAndRandomMatchesCpu'
fail() { echo "check_expect_cuda: FAIL: $*"; exit 1; }
run() { env "$@" "$bin" --gtest_filter="$filter" 2>&1; }

out=$(run EMBER_EXPECT_CUDA=); rc=$?
if echo "$out" | grep -q "CUDA test skipped"; then
  echo "no GPU here: the test is skipped by default"
  [ $rc -eq 0 ] || fail "a skipped run exited $rc"
  out=$(run EMBER_EXPECT_CUDA=1); rc=$?
  [ $rc -ne 0 ] || fail "EMBER_EXPECT_CUDA=1 and no GPU, yet the run passed:
$out"
  echo "$out" | grep -q "EMBER_EXPECT_CUDA=1, but no CUDA" || fail "the failure does not say why:
$out"
  echo "EMBER_EXPECT_CUDA=1: fails, saying why"
  out=$(run EMBER_EXPECT_CUDA=0); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "CUDA test skipped"; } || fail "EMBER_EXPECT_CUDA=0 did not skip:
$out"
  echo "EMBER_EXPECT_CUDA=0: skipped"
  out=$(run EMBER_EXPECT_CUDA=yes); rc=$?
  { [ $rc -ne 0 ] && echo "$out" | grep -q "EMBER_EXPECT_CUDA='yes' is not a switch"; } ||
    fail "EMBER_EXPECT_CUDA=yes was not refused:
$out"
  echo "EMBER_EXPECT_CUDA=yes: refused"
else
  echo "a GPU is here: the CUDA test ran"
  [ $rc -eq 0 ] || fail "the CUDA test failed:
$out"
  out=$(run EMBER_EXPECT_CUDA=1); rc=$?
  [ $rc -eq 0 ] || fail "with EMBER_EXPECT_CUDA=1 the CUDA test failed:
$out"
  echo "EMBER_EXPECT_CUDA=1: passes"
fi
echo "check_expect_cuda: ok"

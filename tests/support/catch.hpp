#pragma once
// Include this instead of <catch2/catch.hpp> in every test file. c10 (via ATen) defines a glog-style CHECK
// macro that silently replaces Catch's CHECK when ATen is included after Catch; including ATen first and
// undefining its CHECK makes every CHECK a Catch assertion.
#include <ATen/ATen.h>
#undef CHECK
#include <catch2/catch.hpp>

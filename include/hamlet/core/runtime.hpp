#pragma once
// Process-wide runtime settings.

namespace hamlet {

// Keeps large freed blocks in the heap instead of returning them to the OS. Batched MLP steps allocate tens of
// megabytes per step (gathered minibatches of B problems); with glibc's defaults every such block is a fresh
// mmap whose pages fault in again, which more than doubled the wall time of an MNIST evaluation (measured with Adam
// for 100 problems x 50 steps: 9.1 s -> 3.8 s). Call once at program start; a no-op where glibc's mallopt is unavailable.
void tune_allocator();

}  // namespace hamlet

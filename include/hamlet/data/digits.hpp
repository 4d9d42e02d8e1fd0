#pragma once
// The 8x8 handwritten digits (UCI "optdigits", test part) as Debian's scikit-learn package ships them:
// /usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz, 1,797 rows of 65 comma-separated integers
// (64 pixels in 0..16, row-major 8x8, then the label 0..9; 174-183 images per class). scripts/fetch_data.sh
// extracts it from the python3-sklearn package (without installing it), checks its sha256 and puts it in
// <data root>/digits/. Used for small meta-training tasks (Celo meta-trains on 8x8 images).
#include <string>

#include "hamlet/data/dataset.hpp"

namespace hamlet::data {

// Reads the CSV (plain or gzip): images [N, 64] float32 = pixel / 16 in [0, 1], labels [N] int64. Throws
// hamlet::Error naming the file and the line for a row that is not 65 integers in range.
Dataset load_digits_csv(const std::string& path);

}  // namespace hamlet::data

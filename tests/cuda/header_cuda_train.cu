// <cai/backend/cuda_train.cuh> compiles on its own, and a second inclusion is harmless (#pragma once).
#include <cai/backend/cuda_train.cuh>
#include <cai/backend/cuda_train.cuh>

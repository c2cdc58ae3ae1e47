// <cai/backend/cuda.cuh> compiles on its own, and a second inclusion is harmless (#pragma once).
#include <cai/backend/cuda.cuh>
#include <cai/backend/cuda.cuh>

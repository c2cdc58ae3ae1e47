// The trainer headers compile under nvcc after the CUDA headers: none of train/ pulls range-v3 or the
// data-path headers into a .cu file. (tests/cuda/test_cuda_trainers.cu instantiates the trainers on cuda_t.)
#include <cai/backend/cuda.cuh>
#include <cai/backend/cuda_train.cuh>
#include <cai/train/adamw.hpp>
#include <cai/train/backend_ops.hpp>
#include <cai/train/callbacks.hpp>
#include <cai/train/checkpoint.hpp>
#include <cai/train/clip.hpp>
#include <cai/train/dpo.hpp>
#include <cai/train/losses.hpp>
#include <cai/train/parameters.hpp>
#include <cai/train/ppo.hpp>
#include <cai/train/preference_model.hpp>
#include <cai/train/schedule.hpp>
#include <cai/train/sft.hpp>
#include <cai/train/sgd.hpp>
#include <cai/train/trainer_core.hpp>

/// @file cai.hpp
/// The umbrella header: everything cai offers on the CPU. Fine-grained headers under `cai/` include less;
/// prefer them in large projects to keep compile times down. CUDA headers (`.cuh`) and `cai/remote/` (which links libcurl through
/// the `cai::remote` target) are not included here.
#pragma once

#include "cai/config.hpp"
#include "cai/error.hpp"
#include "cai/random.hpp"
#include "cai/concepts.hpp"

#include "cai/text/types.hpp"
#include "cai/text/generation.hpp"
#include "cai/text/json.hpp"

#include "cai/constitution/principle.hpp"
#include "cai/constitution/constitution.hpp"
#include "cai/constitution/validate.hpp"
#include "cai/constitution/io.hpp"
#include "cai/constitution/presets.hpp"

#include "cai/prompts/transcript.hpp"
#include "cai/prompts/parse.hpp"
#include "cai/prompts/chat.hpp"
#include "cai/prompts/feedback.hpp"

#include "cai/data/jsonl.hpp"
#include "cai/data/gzip.hpp"

#include "cai/critique/critic.hpp"
#include "cai/critique/judge.hpp"
#include "cai/critique/rounds.hpp"
#include "cai/critique/engine.hpp"

#include "cai/backend/tags.hpp"
#include "cai/backend/options.hpp"
#include "cai/backend/cpu.hpp"

#include "cai/model/half.hpp"
#include "cai/model/safetensors.hpp"
#include "cai/model/gguf.hpp"
#include "cai/model/hf_config.hpp"
#include "cai/model/hf_directory.hpp"
#include "cai/model/transformer_config.hpp"
#include "cai/model/transformer.hpp"
#include "cai/model/load.hpp"
#include "cai/model/model_cache.hpp"
#include "cai/model/tokenizer.hpp"
#include "cai/model/chat_template.hpp"
#include "cai/model/bpe_trainer.hpp"
#include "cai/model/native_model.hpp"
#include "cai/model/xtensor.hpp"
#include "cai/train/sgd.hpp"
#include "cai/train/adamw.hpp"
#include "cai/train/clip.hpp"
#include "cai/train/schedule.hpp"
#include "cai/train/losses.hpp"
#include "cai/train/parameters.hpp"
#include "cai/train/callbacks.hpp"
#include "cai/train/checkpoint.hpp"
#include "cai/train/trainer_core.hpp"
#include "cai/train/sft.hpp"
#include "cai/train/preference_model.hpp"
#include "cai/train/dpo.hpp"
#include "cai/train/ppo.hpp"
#include "cai/data/preferences.hpp"
#include "cai/feedback.hpp"
#include "cai/world.hpp"

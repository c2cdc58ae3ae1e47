/// @file config.hpp
/// Overridable defaults of the library, in one place (Eigen's and xtensor's habit). Define a macro before
/// including any cai header to change it; every other header takes its default from here.
#pragma once

#define CAI_VERSION_MAJOR 0
#define CAI_VERSION_MINOR 1
#define CAI_VERSION_PATCH 0
#define CAI_VERSION_STRING "0.1.0"

/// The backend tag that templates use when the caller names none (`cai::cpu` unless overridden).
#ifndef CAI_DEFAULT_BACKEND
#define CAI_DEFAULT_BACKEND ::cai::cpu_t
#endif

/// Default number of prompts that the SL-CAI engine sends to a model in one batched call.
#ifndef CAI_DEFAULT_BATCH_SIZE
#define CAI_DEFAULT_BATCH_SIZE 8
#endif

/// Default number of critique-revision rounds (the paper uses four revisions in sequence).
#ifndef CAI_DEFAULT_REVISION_ROUNDS
#define CAI_DEFAULT_REVISION_ROUNDS 4
#endif

/// Default number of new tokens a generation may produce when the caller does not say.
#ifndef CAI_DEFAULT_MAX_NEW_TOKENS
#define CAI_DEFAULT_MAX_NEW_TOKENS 256
#endif

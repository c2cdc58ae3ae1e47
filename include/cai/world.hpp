/// @file world.hpp
/// The assistant world (a procedural simulation for measuring Constitutional AI, Bai et al. 2022,
/// arXiv:2212.08073, with a tiny model; docs/world.md): requests and response styles (`world/world.hpp`),
/// the world's short constitution (`world/constitution.hpp`) and the base model's corpus
/// (`world/corpus.hpp`).
///
/// The evaluation oracle (`world/oracle.hpp`) is deliberately left out: the pipeline must never see the
/// world's ground truth, so evaluation code includes the oracle by name and a grep shows who does.
#pragma once

#include "cai/world/world.hpp"
#include "cai/world/constitution.hpp"
#include "cai/world/corpus.hpp"

// The command line shared by ember-effnet and ember-vit: every RecipeConfig field as a flag,
// validated (a bad value or a missing path is a message naming it and a non-zero exit).
#pragma once
#include "apps/common/trainer.h"

namespace ember::apps {

// Parses argv over `defaults`, runs the recipe, prints a summary; returns the exit code.
int recipe_main(int argc, char** argv, const std::string& program, const std::string& description,
                const RecipeConfig& defaults);

}  // namespace ember::apps

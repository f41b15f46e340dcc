// ember-effnet: the EfficientNet fine-tuning recipe.
//   head-only epochs (backbone frozen) → linear warmup → hold → cooldown, AdamW or SGD, optional SAM/ASAM.
//   ember-effnet --data ../shared/data/cifar10/train --model effnet_b0_cifar --out runs/effnet
#include "apps/common/recipe_cli.h"

int main(int argc, char** argv) {
  ember::apps::RecipeConfig c;
  c.model = "effnet_b0_cifar";
  c.head_epochs = 5;
  c.warmup_epochs = 10;
  c.hold_epochs = 10;
  c.cooldown_epochs = 20;
  c.lr = 1e-3;
  c.weight_decay = 0.05;
  c.out = "runs/effnet";
  return ember::apps::recipe_main(argc, argv, "ember-effnet", "EfficientNet fine-tuning recipe", c);
}

// ember-vit: the ViT fine-tuning recipe (warmup 4, cooldown 16 epochs by default).
//   ember-vit --data ../shared/data/cifar10/train --model vit_ti_p4 --out runs/vit
#include "apps/common/recipe_cli.h"

int main(int argc, char** argv) {
  ember::apps::RecipeConfig c;
  c.model = "vit_ti_p4";
  c.head_epochs = 5;
  c.warmup_epochs = 4;
  c.hold_epochs = 0;
  c.cooldown_epochs = 16;
  c.lr = 5e-4;
  c.weight_decay = 0.05;
  c.clip_grad = 1.0;
  c.out = "runs/vit";
  return ember::apps::recipe_main(argc, argv, "ember-vit", "ViT fine-tuning recipe", c);
}

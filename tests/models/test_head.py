import pytest
import torch
from torch.nn import functional as F

from rs_metapeft.models import SpectralViTClassifier, init_head_from_class_means

from ..conftest import TINY_VIT


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_class_mean_initialisation(head):
    torch.manual_seed(0)
    model = SpectralViTClassifier(["B04", "B03", "B02", "B08"], 3, img_size=32, patch_size=8,
                                  head=head, head_scale=5.0, backbone_kwargs=TINY_VIT)
    before = model.head.weight.detach().clone()
    images = torch.randn(10, 4, 32, 32)
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0, 0])  # class 2 has no images
    batches = [{"image": images[:6], "label": labels[:6]},
               {"image": images[6:], "label": labels[6:]}]
    model.train()
    counts = init_head_from_class_means(model, batches)
    assert counts.tolist() == [6, 4, 0] and model.training  # mode restored
    model.eval()
    with torch.no_grad():
        feats = model.features(images)
    for c in (0, 1):
        assert torch.allclose(model.head.weight[c], F.normalize(feats[labels == c].mean(0), dim=0),
                              atol=1e-5)
    assert torch.equal(model.head.weight[2], before[2])
    if head == "linear":
        assert torch.all(model.head.bias[:2] == 0)
    else:
        logits = model(images)
        assert logits.abs().max() <= 5.0 + 1e-4  # cosine logits are bounded by the scale
    with pytest.raises(ValueError, match="no batches"):
        init_head_from_class_means(model, [])

import torch

from norse.torch.utils.clone import clone_tensor


def test_clone_tensor_detaches_copies_and_moves():
    x = torch.ones(2, requires_grad=True)
    cloned = clone_tensor(x, device="cpu")
    assert not cloned.requires_grad and torch.equal(cloned, x.detach())
    cloned.add_(1)
    assert torch.equal(x.detach(), torch.ones(2))  # a copy, not a view
    assert clone_tensor(x, device=torch.device("meta")).device.type == "meta"
    assert clone_tensor(0.5).item() == 0.5  # Norse 1.1 raised for numbers

from norse.torch.utils import (
    clone,
)  # Norse 1.1 path: norse.torch.utils.clone.clone_tensor
from norse.torch.utils import (
    pytree,
)  # Norse 1.1 path: norse.torch.utils.pytree.StateTuple and its metaclass

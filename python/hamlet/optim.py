"""hamlet optimizers as torch.optim.Optimizer (the Python twin of hamlet::interop::TorchOptimizer).

Each param group is one hamlet problem: its tensors get a leading problem dimension of 1 and go through hamlet's
update together (so per-problem reductions, e.g. ECDSep's global norms, span the group). ``lr`` in each param group
is the knob hamlet's tuner scans: the learning rate of a hand-designed optimizer, ``out_mul`` (the output scale) of
a learned one; changing it (by hand or through a torch.optim.lr_scheduler) rebuilds the group's hamlet optimizer on
the next step with its state kept, as in C++.
"""
import copy
import math

import torch

from . import _C


def _option_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def _lr_key(name):
    return "out_mul" if _C.is_learned(name) else "lr"


class Optimizer(torch.optim.Optimizer):
    """A hamlet optimizer as a torch.optim.Optimizer.

    Args:
        params: an iterable of tensors or of param-group dicts, as for any torch optimizer.
        name: a hamlet registry name ("sgd", "momentum", "nag", "adam", "rmsprop", ..., or a learned optimizer such
            as "lstm"); optional with ``weights``, whose file names its optimizer.
        weights: a learned optimizer's weight file (written by ``hamlet meta-train --weights-out``).
        check_finite: refuse a step whose gradients hold NaN or inf (nothing is changed), as in C++.
        **options: hamlet options of the optimizer, e.g. ``lr=0.03`` or ``out_mul=0.5``.

    Errors are hamlet.Error (a RuntimeError) with hamlet's message.
    """

    def __init__(self, params, name=None, weights=None, check_finite=True, **options):
        if name is None and weights is None:
            raise ValueError("hamlet.optim.Optimizer needs a name (e.g. 'adam') or weights='FILE.h5'")
        if weights is not None:
            recorded = _C.weights_optimizer(str(weights))
            if name is not None and name != recorded:
                raise _C.Error(f"{weights} holds weights of learned optimizer '{recorded}', not '{name}'")
            name = recorded
            options["weights"] = str(weights)
        hamlet_options = {k: _option_text(v) for k, v in options.items()}
        probe = _C.make_optimizer(name, hamlet_options)  # a bad name, option or file fails here
        defaults = dict(name=name, options=hamlet_options, lr=probe.learning_rate(), check_finite=check_finite)
        self._algorithms = {}
        super().__init__(params, defaults)
        for group in self.param_groups:
            self._algorithm(group)

    # The hamlet optimizer of a group, rebuilt when its name, options or lr changed.
    def _algorithm(self, group):
        options = dict(group["options"])
        options[_lr_key(group["name"])] = _option_text(float(group["lr"]))
        key = (group["name"], tuple(sorted(options.items())))
        cached = self._algorithms.get(id(group))
        if cached is None or cached[0] != key:
            cached = (key, _C.make_optimizer(group["name"], options))
            self._algorithms[id(group)] = cached
        return cached[1]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            self._step_group(index, group, loss)
        return loss

    def _step_group(self, index, group, loss):
        params = group["params"]
        with_grad = [p.grad is not None for p in params]
        if not any(with_grad):
            return
        if not all(with_grad):
            missing = ", ".join(str(i) for i, g in enumerate(with_grad) if not g)
            raise _C.Error(f"hamlet.optim.Optimizer: param group {index}: parameters {missing} have no gradient while "
                           "the others do; hamlet updates a group's tensors together")
        algorithm = self._algorithm(group)
        thetas = [p.detach().unsqueeze(0) for p in params]
        grads = [p.grad.detach().unsqueeze(0) for p in params]
        if group["check_finite"]:
            for i, g in enumerate(grads):
                if not torch.isfinite(g).all():
                    raise _C.Error(f"hamlet.optim.Optimizer: param group {index}, parameter {i} (shape "
                                   f"{list(params[i].shape)}): the gradient holds NaN or inf; nothing was updated")
        loss_values = None
        if algorithm.needs_loss():
            if loss is None:
                raise _C.Error(f"hamlet.optim.Optimizer: '{algorithm.name()}' reads the loss; call step(closure) "
                               "with a closure that returns the loss")
            loss_values = torch.as_tensor(loss).detach().reshape(1).to(thetas[0].dtype)
        state = self.state[params[0]]
        if "hamlet" not in state:
            state["hamlet"] = algorithm.init(thetas)
        new_params, new_state, diagnostics = algorithm.update(thetas, grads, loss_values, state["hamlet"])
        for p, new in zip(params, new_params):
            p.copy_(new.reshape(p.shape))
        state["hamlet"] = new_state
        state["diagnostics"] = diagnostics

    def hamlet_state(self, group=0):
        """The hamlet OptimizerState of a param group: {"step", "slots", "scalars"} (None before its first step)."""
        return self.state[self.param_groups[group]["params"][0]].get("hamlet")

    def state_dict(self):
        # torch.optim's load_state_dict casts floating tensors of `state` to each parameter's dtype; hamlet's state
        # keeps its own dtypes, so it travels beside `state`, bit for bit.
        out = super().state_dict()
        out["state"] = {}
        out["hamlet_groups"] = [copy.deepcopy(self.hamlet_state(g)) for g in range(len(self.param_groups))]
        return out

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        groups = state_dict.pop("hamlet_groups", None)
        if groups is None:
            raise _C.Error("hamlet.optim.Optimizer.load_state_dict: not a state_dict of a hamlet optimizer "
                           "(no 'hamlet_groups')")
        if len(groups) != len(self.param_groups):
            raise _C.Error(f"hamlet.optim.Optimizer.load_state_dict: {len(groups)} param groups in the state_dict, "
                           f"{len(self.param_groups)} here")
        for g, (saved, group) in enumerate(zip(state_dict["param_groups"], self.param_groups)):
            if saved["name"] != group["name"]:
                raise _C.Error(f"hamlet.optim.Optimizer.load_state_dict: param group {g} holds the state of "
                               f"optimizer '{saved['name']}', this optimizer runs '{group['name']}'")
        super().load_state_dict(state_dict)
        self._algorithms = {}
        for group, saved in zip(self.param_groups, groups):
            self.state[group["params"][0]].pop("hamlet", None)
            if saved is not None:
                device = group["params"][0].device
                self.state[group["params"][0]]["hamlet"] = {
                    "step": saved["step"],
                    "slots": {k: [t.to(device) for t in v] for k, v in saved["slots"].items()},
                    "scalars": {k: t.to(device) for k, t in saved["scalars"].items()},
                }

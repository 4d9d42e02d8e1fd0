import pathlib

import pytest
import torch

import hamlet
from conftest import ROOT, make_model, require_hamlets_blas_kernels, run_hamlet, train

TORCH_TWINS = {
    "sgd": (0.05, lambda p, lr: torch.optim.SGD(p, lr=lr)),
    "momentum": (0.05, lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)),
    "nag": (0.05, lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True)),
    "adam": (0.01, lambda p, lr: torch.optim.Adam(p, lr=lr)),
    "rmsprop": (0.01, lambda p, lr: torch.optim.RMSprop(p, lr=lr)),
}


@pytest.mark.parametrize("name", sorted(TORCH_TWINS))
def test_follows_torch_optim_to_1e6_over_50_steps(name, regression):
    lr, make_theirs = TORCH_TWINS[name]
    ours_model, theirs_model = make_model(2), make_model(2)
    start = [p.detach().clone() for p in ours_model.parameters()]
    ours = hamlet.optim.Optimizer(ours_model.parameters(), name, lr=lr)
    theirs = make_theirs(theirs_model.parameters(), lr)
    train(ours_model, ours, regression, 50)
    train(theirs_model, theirs, regression, 50)
    worst = max((a - b).abs().max().item() for a, b in zip(ours_model.parameters(), theirs_model.parameters()))
    assert worst <= 1e-6
    assert (list(ours_model.parameters())[0] - start[0]).abs().max().item() > 1e-3  # it really moved
    assert ours.param_groups[0]["lr"] == lr


def test_state_dict_round_trip_resumes_bitwise(regression, tmp_path):
    for name, options in [("adam", {"lr": 0.01}), ("ecdsep", {"lr": 0.01}), ("momentum", {"lr": 0.05})]:
        uninterrupted = make_model(3)
        a = hamlet.optim.Optimizer(uninterrupted.parameters(), name, **options)
        train(uninterrupted, a, regression, 10, closure_loss=True)
        torch.save({"model": uninterrupted.state_dict(), "opt": a.state_dict()}, tmp_path / "ckpt.pt")
        train(uninterrupted, a, regression, 10, closure_loss=True)

        resumed = make_model(4)  # other initial values, replaced by the saved ones
        saved = torch.load(tmp_path / "ckpt.pt")
        resumed.load_state_dict(saved["model"])
        b = hamlet.optim.Optimizer(resumed.parameters(), name, **options)
        b.load_state_dict(saved["opt"])
        assert b.hamlet_state()["step"] == 10
        train(resumed, b, regression, 10, closure_loss=True)
        for p, q in zip(uninterrupted.parameters(), resumed.parameters()):
            assert torch.equal(p, q), name
        assert b.hamlet_state()["step"] == 20


def test_an_lr_scheduler_changes_the_step_as_in_cpp(regression):
    # StepLR halves lr after 5 steps: the run equals 5 steps at lr followed by 5 steps at lr / 2 by hand.
    a_model, b_model = make_model(5), make_model(5)
    a = hamlet.optim.Optimizer(a_model.parameters(), "momentum", lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(a, step_size=5, gamma=0.5)
    for _ in range(10):
        train(a_model, a, regression, 1)
        scheduler.step()
    b = hamlet.optim.Optimizer(b_model.parameters(), "momentum", lr=0.1)
    train(b_model, b, regression, 5)
    b.param_groups[0]["lr"] = 0.05
    train(b_model, b, regression, 5)
    for p, q in zip(a_model.parameters(), b_model.parameters()):
        assert torch.equal(p, q)
    assert a.param_groups[0]["lr"] == pytest.approx(0.025)
    assert b.hamlet_state()["step"] == 10  # the momentum state was kept through the rebuilds


def test_param_groups_are_problems_of_their_own(regression):
    model = make_model(6)
    first, second = list(model[0].parameters()), list(model[2].parameters())
    opt = hamlet.optim.Optimizer([{"params": first}, {"params": second, "lr": 0.001}], "adam", lr=0.01)
    train(model, opt, regression, 3)
    assert opt.param_groups[1]["lr"] == 0.001
    assert opt.hamlet_state(0)["step"] == 3 and opt.hamlet_state(1)["step"] == 3


def test_a_learned_weight_file_gives_hamlet_evaluates_losses_on_mnist_problem_0(tmp_path):
    weights = ROOT / "results/paper/full/weights/mnist_sigmoid_lstm_seed0.h5"
    if not (ROOT / "data/mnist/train-images-idx3-ubyte").exists():
        pytest.skip("no prepared MNIST (scripts/fetch_data.sh)")
    require_hamlets_blas_kernels()
    steps = 8
    out = tmp_path / "run.h5"
    run_hamlet("evaluate", "--task=mlp", "--optimizers=lstm", f"--optimizer.lstm.weights={weights}", "--problems=1",
               f"--steps={steps}", f"--out={out}", "--log-level=warn")
    reference = hamlet.runs.load(out)["methods"]["lstm"]

    problem = hamlet.tasks.sample("mlp", split="test", seed=0, first=0, count=1)
    params = [p.squeeze(0).clone().requires_grad_(True) for p in problem.initial_params()]
    opt = hamlet.optim.Optimizer(params, weights=weights)
    assert opt.param_groups[0]["name"] == "lstm"
    losses = []
    for t in range(steps):
        opt.zero_grad()
        loss = problem.loss([p.unsqueeze(0) for p in params], t)
        loss.sum().backward()
        opt.step()
        losses.append(loss.item())
    assert losses == reference["loss"][0].tolist()  # bitwise
    with torch.no_grad():
        assert problem.loss([p.unsqueeze(0) for p in params], steps).item() == reference["final_loss"][0]


def test_bad_input_raises_with_hamlets_message(tmp_path, regression):
    model = make_model(1)
    with pytest.raises(hamlet.Error, match="unknown optimizer 'adamw'"):
        hamlet.optim.Optimizer(model.parameters(), "adamw")
    with pytest.raises(hamlet.Error, match="lr"):
        hamlet.optim.Optimizer(model.parameters(), "adam", lr=-1)
    weights = ROOT / "results/paper/full/weights/mnist_sigmoid_lstm_seed0.h5"
    with pytest.raises(hamlet.Error, match="not 'phnn'"):
        hamlet.optim.Optimizer(model.parameters(), "phnn", weights=weights)
    with pytest.raises(hamlet.Error, match="no such file"):
        hamlet.optim.Optimizer(model.parameters(), weights=tmp_path / "missing.h5")
    opt = hamlet.optim.Optimizer(model.parameters(), "sgd", lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = regression
    torch.nn.functional.mse_loss(model(x), y).backward()
    list(model.parameters())[1].grad[0] = float("nan")
    with pytest.raises(hamlet.Error, match="parameter 1 .* NaN or inf; nothing was updated"):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(hamlet.Error, match="reads the loss"):
        ecd = hamlet.optim.Optimizer(model.parameters(), "ecdsep", lr=0.01)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        ecd.step()
    with pytest.raises(hamlet.Error, match="holds the state of optimizer 'sgd'"):
        hamlet.optim.Optimizer(model.parameters(), "adam").load_state_dict(opt.state_dict())
    assert isinstance(hamlet.Error("x"), RuntimeError)


def test_registry_names():
    assert {"sgd", "adam", "nag"} <= set(hamlet.hand_designed_names())
    assert {"lstm", "phnn", "mlp-lopt"} <= set(hamlet.learned_names())
    assert {"quadratic", "mlp", "hnn"} <= set(hamlet.task_names())


@pytest.mark.parametrize("name", ["adam", "phnn-lift"])
def test_threads_are_torchs_and_leave_the_values_alone(name):
    """torch.set_num_threads sets the threads hamlet's fused steps use; 1 and 2 threads give the same bits."""
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            assert hamlet._C.num_threads() == threads
            torch.manual_seed(0)
            p = torch.nn.Parameter(torch.randn(70000))  # several of the fused loops' chunks
            opt = hamlet.optim.Optimizer([p], name)
            for _ in range(3):
                p.grad = torch.sin(p.detach()) + 0.1
                opt.step()
            results.append(p.detach().clone())
    finally:
        torch.set_num_threads(before)
    assert torch.equal(results[0], results[1])

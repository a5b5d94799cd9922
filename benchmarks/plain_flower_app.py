"""A plain Flower FedAvg app, the baseline of `benchmarks.vs_flower`, written the way Flower's
PyTorch quickstart writes one: stock ClientApp and stock FedAvg strategy, dense; per message the
client builds its model, wraps its partition in a torch DataLoader (batch 32, shuffled) and runs a
plain SGD loop. The dataset itself is loaded once per process (as the quickstart caches its
FederatedDataset); same model, data, split, optimizer settings and epochs as fedsparse.

The model is the same network with the same weights; with `stock_layers` (the default) it is
written with stock layers (ReLU, then `nn.MaxPool2d`) as a plain app would write it, otherwise it
is fedsparse's own module (channels-last pooling, fedsparse.models.feddst.pool_relu).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fedsparse.config import Config
from fedsparse.experiment import Experiment, experiment_from_yaml
from fedsparse.models.feddst import FedDSTNet

app = ClientApp()


class StockFedDSTNet(FedDSTNet):
    """FedDST's CNN with stock layers: conv -> ReLU -> nn.MaxPool2d(3, 1), twice, then the MLP."""

    stock_pool = nn.MaxPool2d(3, stride=1)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return self.stock_pool(torch.relu(x))


def build(exp: Experiment, stock_layers: bool) -> nn.Module:
    """The run's model; a FedDST CNN rewritten with stock layers when `stock_layers`."""
    model = exp.new_model()
    if stock_layers and isinstance(model, FedDSTNet):
        model.__class__ = StockFedDSTNet  # same modules and weights, stock forward
    return model


@app.train()
def train(msg: Message, context: Context) -> Message:
    torch.set_num_threads(1)
    yaml_text = str(msg.content["config"]["yaml"])
    exp = experiment_from_yaml(yaml_text)
    model = build(exp, bool(msg.content["config"]["stock_layers"]))
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    cfg = exp.cfg
    x, y = exp.client_train(int(context.node_config["partition-id"]))
    loader = DataLoader(TensorDataset(x, y), batch_size=cfg.train.batch_size, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.train.lr, momentum=cfg.train.momentum,
                                weight_decay=cfg.train.weight_decay)
    model.train()
    for _ in range(cfg.train.local_epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()),
                               "metrics": MetricRecord({"num-examples": len(y)})}),
                   reply_to=msg)


def make_server_app(cfg: Config, marks: list[float], stock_layers: bool = True) -> ServerApp:
    """Stock FedAvg for `cfg.train.rounds` rounds; `marks` gets the time after each round (and round 0)."""
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        exp = experiment_from_yaml(cfg.to_yaml())
        strategy = FedAvg(fraction_train=cfg.train.clients_per_round / cfg.data.num_clients,
                          fraction_evaluate=0.0, min_available_nodes=cfg.data.num_clients)
        strategy.start(grid, ArrayRecord(exp.new_model().state_dict()), num_rounds=cfg.train.rounds,
                       train_config=ConfigRecord({"yaml": cfg.to_yaml(), "stock_layers": stock_layers}),
                       evaluate_fn=lambda rnd, arrays: marks.append(time.perf_counter()))

    return server

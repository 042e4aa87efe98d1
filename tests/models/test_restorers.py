"""Restorers: reflectance in and out, position-fixed noise, dates, the reference network, progress and cancel."""

import pytest
import torch

from models.card import ModelCard
from models.cloud_fill import fill_clouds, local_fill, tile_cloud_mask
from models.networks.dbcr import DBCRConfig, DBCRNet
from models.networks.de import DEConfig, DENet
from models.networks.de_reference import DEReferenceConfig, DEReferenceNet
from models.networks.diffcr import DiffCRConfig, DiffCRNet
from models.restorers import date_clouds, de_restorer, diffcr_restorer, given_dates, make_restorer
from models.sampling.schedule_configs import DESchedule, DiffCRSchedule, Thresholding
from models.temporal_fill import temporal_fill

DIFFCR = DiffCRConfig(width=8, enc_blocks=(1,), dec_blocks=(1,), dates=2)
SCHEDULE = DiffCRSchedule("sigmoid", 1000, time_input="gamma", thresholding=Thresholding(0.995, 1))
DE = DEConfig(model_channels=32, channel_mult=(1, 2), attention_ds=(), wa_channels=32, wa_channel_mult=(1, 2))
REFERENCE = DEReferenceConfig(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)


class Cancelled(Exception):
    pass


def _diffcr():
    torch.manual_seed(0)
    network = DiffCRNet(DIFFCR).eval()
    card = ModelCard(name="t", algorithm="diffcr", config=DIFFCR.__dict__, sar_bands=(), schedule=SCHEDULE)
    return network, card


def _de():
    network = DENet(DE).eval()  # zero-initialised outputs: ε = 0, w = 0 → clamped to 0.3
    card = ModelCard(name="d", algorithm="de", config=DE.__dict__, schedule=DESchedule())
    return network, card, DEReferenceNet(REFERENCE).eval()


def _dbcr():
    config = DBCRConfig(optical_channels=3, widths=(8, 16), enc_blocks=(1, 1), dec_blocks=(1, 1), heads=(1, 2))
    return DBCRNet(config).eval(), ModelCard(name="b", algorithm="dbcr", config=config.to_dict())


def test_diffcr_restorer_is_deterministic_and_in_reflectance():
    network, card = _diffcr()
    restore = diffcr_restorer(network, card, nfe=3, seed=5)
    optical = torch.rand(2, 6, 8, 8)  # two dates stacked
    out = restore(optical, None, [(0, 0), (0, 8)])
    assert out.shape == (2, 3, 8, 8)
    assert out.min() >= 0 and out.max() <= 1  # thresholded x0 in [-1, 1] maps into [0, 1]
    torch.testing.assert_close(restore(optical, None, [(0, 0), (0, 8)]), out, rtol=0, atol=0)
    assert not torch.equal(restore(optical, None, [(64, 0), (0, 8)])[0], out[0])


def test_diffcr_restorer_repeats_a_single_date_and_rejects_wrong_bands():
    network, card = _diffcr()
    restore = diffcr_restorer(network, card, nfe=2)
    single = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(restore(single, None, [(0, 0)]), restore(single.repeat(1, 2, 1, 1), None, [(0, 0)]))
    with pytest.raises(ValueError, match="needs 3 per date"):
        restore(torch.rand(1, 4, 8, 8), None, [(0, 0)])


def test_de_restorer_uses_the_reference():
    network, card, reference = _de()
    out = de_restorer(network, card, nfe=4, seed=1, reference=reference)(torch.rand(1, 3, 16, 16), None, [(0, 0)])
    assert out.shape == (1, 3, 16, 16) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="names no reference network"):
        de_restorer(network, card, nfe=4)


class Recorder(torch.nn.Module):
    """A reference network that returns its input and keeps it."""

    def forward(self, image):
        self.seen = image.clone()
        return image


@pytest.mark.parametrize("start", ["cloudy", "local_fill"])
def test_de_sees_the_cloudy_image_or_its_local_fill_as_its_card_says(start):
    network, card, _ = _de()
    card = card.replace(optical_bands=("B4", "B3", "B2"), bridge_start=start)
    optical = torch.rand(1, 3, 32, 32) * 0.3
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1
    reference = Recorder()
    de_restorer(network, card, nfe=2, reference=reference)(optical, None, [(0, 0)], mask=mask)
    expected = local_fill(optical, mask) if start == "local_fill" else optical
    assert torch.equal(reference.seen, expected)


def _inputs(algorithm):
    if algorithm == "dbcr":
        network, card = _dbcr()
        return network, card, None, (torch.rand(2, 3, 16, 16), torch.rand(2, 2, 16, 16))
    if algorithm == "diffcr":
        network, card = _diffcr()
        return network, card, None, (torch.rand(2, 3, 8, 8), None)
    network, card, reference = _de()
    return network, card, reference, (torch.rand(2, 3, 16, 16), None)


class Counting(torch.nn.Module):
    """Counts the calls of the method's network (DE's reference network is not wrapped)."""

    def __init__(self, network):
        super().__init__()
        self.network, self.calls = network, 0

    def forward(self, *args):
        self.calls += 1
        return self.network(*args)


@pytest.mark.parametrize(("algorithm", "nfe"), [("dbcr", 3), ("diffcr", 3), ("de", 4)])
def test_callback_reports_every_network_evaluation_of_every_batch(algorithm, nfe):
    network, card, reference, (optical, sar) = _inputs(algorithm)
    seen = []
    restore = make_restorer(network, card, nfe, reference=reference, callback=lambda *progress: seen.append(progress))
    restore(optical, sar, [(0, 0), (0, 16)])
    restore(optical[:1], None if sar is None else sar[:1], [(0, 0)])
    assert seen == [(i, nfe) for i in range(1, nfe + 1)] * 2


@pytest.mark.parametrize("algorithm", ["dbcr", "diffcr", "de"])
def test_a_raising_callback_stops_restore_after_one_network_evaluation(algorithm):
    network, card, reference, (optical, sar) = _inputs(algorithm)
    counting = Counting(network)

    def cancel(done, total):
        raise Cancelled

    restore = make_restorer(counting, card, 4, reference=reference, callback=cancel)
    with pytest.raises(Cancelled):
        restore(optical, sar, [(0, 0), (0, 16)])
    assert counting.calls == 1


def test_make_restorer_rejects_what_it_cannot_run():
    network, card = _dbcr()
    with pytest.raises(ValueError, match="only DE takes a reference"):
        make_restorer(network, card, 1, reference=network)
    with pytest.raises(ValueError, match="no sampler"):
        make_restorer(network, card.replace(algorithm="de-reference"), 1)
    with pytest.raises(ValueError, match="at least 2 steps"):
        make_restorer(*_diffcr(), 1)


def _local_fill_dbcr():
    config = DBCRConfig(widths=(8, 16), enc_blocks=(1, 1), dec_blocks=(1, 1), heads=(1, 2), cloudy_channels=14)
    card = ModelCard(name="f", algorithm="dbcr", config=config.to_dict(), bridge_start="local_fill")
    return DBCRNet(config).eval(), card


def test_a_fresh_local_fill_dbcr_returns_the_local_fill_of_the_given_mask():
    network, card = _local_fill_dbcr()  # a fresh DB-CR is the identity on its bridge start
    optical, sar = torch.rand(1, 13, 32, 32) * 0.3, torch.rand(1, 2, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 4:12, 4:12] = 1
    out = make_restorer(network, card, 1)(optical, sar, [(0, 0)], mask=mask)
    assert torch.allclose(out, fill_clouds(optical, mask, card.optical_bands), atol=1e-6)
    assert not torch.allclose(out, optical)


def test_a_local_fill_dbcr_finds_the_clouds_itself_without_a_mask():
    network, card = _local_fill_dbcr()
    optical, sar = torch.full((1, 13, 32, 32), 0.05), torch.rand(1, 2, 32, 32)
    optical[..., 8:24, 8:24] = 0.8  # a bright, flat, cloud-like square over dark ground
    found = tile_cloud_mask(optical, card.optical_bands, 0.4)
    assert found.any()
    out = make_restorer(network, card, 1)(optical, sar, [(0, 0)])
    assert torch.allclose(out, fill_clouds(optical, found, card.optical_bands), atol=1e-6)


def test_cards_refuse_an_unknown_bridge_start():
    with pytest.raises(ValueError, match="bridge_start"):
        ModelCard(name="b", algorithm="dbcr", config={}, bridge_start="median")


PRIOR = DiffCRConfig(bands=13, dates=3, width=8, enc_blocks=(1,), dec_blocks=(1,), prior=True)


def _prior_diffcr():
    torch.manual_seed(0)
    network = DiffCRNet(PRIOR).eval()  # its last layer starts at zero: it adds nothing to the prior
    card = ModelCard(
        name="p", algorithm="diffcr", config=PRIOR.__dict__, sar_bands=(), schedule=SCHEDULE, x0_prior="temporal_fill"
    )
    return network, card


def _two_dates(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Two dark clear dates of one place (s2cloudless finds no cloud) and a square cloud on the first."""
    torch.manual_seed(1)
    spectrum = torch.linspace(0.05, 0.15, 13)[None, :, None, None]  # band-to-band noise would look like cloud
    ground = spectrum * (0.8 + 0.4 * torch.rand(1, 1, size, size))
    mask = torch.zeros(1, 1, size, size)
    mask[..., 8:20, 8:20] = 1.0
    first = torch.where(mask > 0, torch.full_like(ground, 0.6), ground)
    return torch.cat([first, ground * 0.9 + 0.01], dim=1), mask


@pytest.mark.parametrize("given", [1, 2, 3])
def test_an_untrained_prior_diffcr_returns_the_temporal_fill_through_the_sampler(given):
    network, card = _prior_diffcr()
    optical, mask = _two_dates()
    optical = torch.cat([optical, optical[:, 13:]], dim=1)[:, : 13 * given]
    restore = diffcr_restorer(network, card, nfe=4)
    out = restore(optical, None, [(0, 0)], mask)
    dates, count = given_dates(optical, 13, 3)
    clouds = date_clouds(dates, count, card.optical_bands, mask)
    assert torch.equal(clouds[0, count:], torch.ones_like(clouds[0, count:]))  # missing dates: cloud everywhere
    present = torch.tensor([[k < given for k in range(3)]])
    torch.testing.assert_close(out, temporal_fill(dates, clouds, present), rtol=0, atol=1e-6)
    if given > 1:  # under the cloud: the second date (clear to s2cloudless), matched to the first
        assert clouds[0, 1].sum() == 0
        assert (out[:, :, 8:20, 8:20] - optical[:, 13:26, 8:20, 8:20]).abs().max() < 0.02
    else:  # one date: the local fill of the clear ground around the cloud
        torch.testing.assert_close(out, local_fill(optical, mask), rtol=0, atol=1e-6)


def test_a_prior_diffcr_refuses_more_dates_than_its_own_and_a_card_that_does_not_fit():
    network, card = _prior_diffcr()
    restore = diffcr_restorer(network, card, nfe=2)
    with pytest.raises(ValueError, match="1 to 3 dates"):
        restore(torch.rand(1, 4 * 13, 16, 16), None, [(0, 0)])
    with pytest.raises(ValueError, match="x0_prior"):
        diffcr_restorer(network, card.replace(x0_prior="none"), nfe=2)


def test_a_trained_prior_diffcr_changes_the_fill():
    network, card = _prior_diffcr()
    optical, mask = _two_dates()
    with torch.no_grad():
        network.ending.bias.fill_(0.1)  # a correction of +0.1 in [-1, 1]: +0.05 reflectance
    out = diffcr_restorer(network, card, nfe=2)(optical, None, [(0, 0)], mask)
    dates, count = given_dates(optical, 13, 3)
    fill = temporal_fill(
        dates, date_clouds(dates, count, card.optical_bands, mask), torch.tensor([[True, True, False]])
    )
    torch.testing.assert_close(out, (fill + 0.05).clamp(max=1), rtol=0, atol=1e-5)


def test_a_prior_diffcr_finds_the_later_dates_clouds_at_the_callers_threshold():
    network, card = _prior_diffcr()
    optical, mask = _two_dates()
    dates, count = given_dates(optical, 13, 3)
    assert date_clouds(dates, count, card.optical_bands, mask, threshold=1.0)[0, 1].sum() == 0
    assert bool(date_clouds(dates, count, card.optical_bands, mask, threshold=0.0)[0, 1].all())
    # Every pixel of the later date counts as cloud at threshold 0: the first date's cloud takes its local fill.
    strict = diffcr_restorer(network, card, nfe=2, cloud_threshold=0.0)(optical, None, [(0, 0)], mask)
    torch.testing.assert_close(strict, local_fill(optical[:, :13], mask), rtol=0, atol=1e-6)

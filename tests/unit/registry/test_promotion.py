from genoflow.registry.promotion import decide


def test_decide__no_champion_promotes():
    assert decide(0.70, None, 0.005, "test_auc_roc") == (True, "no champion yet")


def test_decide__margin_required():
    promoted, reason = decide(0.703, 0.700, 0.005, "test_auc_roc")
    assert not promoted and "margin +0.0030 < 0.005" in reason
    promoted, reason = decide(0.710, 0.700, 0.005, "test_auc_roc")
    assert promoted and "beats" in reason


def test_decide__worse_model_never_promoted():
    assert decide(0.60, 0.80, 0.0, "test_auc_roc")[0] is False


def test_decide__same_version_stays_champion():
    assert decide(0.60, 0.60, 0.005, "m", same_version=True)[0] is True

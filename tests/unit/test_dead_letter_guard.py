from domain.dead_letter_guard import DeadLetterGuard


def test_trips_once_when_the_ratio_is_exceeded_after_enough_records():
    guard = DeadLetterGuard(window=100, max_ratio=0.5, min_records=20)
    assert not any(guard.record(True) for _ in range(19))  # too few records to judge
    assert guard.record(True) is True
    assert guard.tripped and guard.record(True) is False  # trips once


def test_normal_error_rates_never_trip():
    guard = DeadLetterGuard(window=100, max_ratio=0.5, min_records=20)
    for i in range(10_000):
        guard.record(i % 10 == 0)
    assert not guard.tripped and abs(guard.ratio - 0.1) < 0.02


def test_the_window_forgets_old_outcomes_and_reset_rearms():
    guard = DeadLetterGuard(window=50, max_ratio=0.5, min_records=10)
    for _ in range(50):
        guard.record(True)
    assert guard.tripped
    guard.reset()
    for _ in range(50):
        guard.record(False)
    assert guard.ratio == 0.0 and not guard.tripped

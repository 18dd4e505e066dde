import numpy as np
import pytest
import soundfile as sf

from slamlm.audio import AudioError, find_audio, load_audio, probe_audio, record_id


def test_peer_audio_loads(peer_example_dir):
    wav = load_audio(peer_example_dir / "audio1.flac")
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) / 16000 - 14.085) < 0.01


def test_stereo_44k_is_mixed_and_resampled(sine_wav):
    p = sine_wav(seconds=2.0, sr=44100, channels=2)
    wav = load_audio(p)
    assert wav.shape == (32000,)
    # a 220 Hz sine survives resampling: dominant FFT bin at 220 Hz
    spec = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spec) * 16000 / len(wav) - 220) < 2


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"this is a text file, not audio", "not a readable audio file"),
])
def test_bad_files_name_the_path(tmp_path, content, reason):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as e:
        load_audio(p)
    assert str(p) in str(e.value)


def test_truncated_flac(tmp_path, peer_example_dir):
    data = (peer_example_dir / "audio2.flac").read_bytes()
    p = tmp_path / "cut.flac"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(AudioError, match="cut.flac: (corrupt|truncated|not a readable)"):
        load_audio(p)


def test_too_short_and_nan(tmp_path, sine_wav):
    with pytest.raises(AudioError, match="too short: 0.050 s"):
        load_audio(sine_wav(seconds=0.05), min_seconds=0.1)
    p = tmp_path / "nan.wav"
    x = np.zeros(16000, dtype=np.float32)
    x[10] = np.nan
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(p)


def test_missing_file():
    with pytest.raises(AudioError, match="does not exist"):
        probe_audio("/nonexistent/x.wav")


def test_find_audio_and_ids(tmp_path, sine_wav):
    sine_wav(name="b/2.wav")
    sine_wav(name="a/1.flac")
    (tmp_path / "notes.txt").write_text("x")
    found = find_audio(tmp_path)
    assert [record_id(p, tmp_path) for p in found] == ["a/1", "b/2"]
    globbed = find_audio(str(tmp_path) + "/*/*.wav")
    assert [record_id(p, str(tmp_path) + "/*/*.wav") for p in globbed] == ["b/2"]

"""Inputs an attacker would upload: playlists and manifests naming local files, and text
dressed up as a transport stream."""

from __future__ import annotations


def padded_like_ts(text: bytes, offset: int, stride: int, size: int = 4096) -> bytes:
    """Text with b'G' (the TS sync byte) written at every packet start, as an attacker would."""
    data = bytearray(text.ljust(size, b" "))
    for pos in range(offset, size, stride):
        data[pos] = 0x47
    return bytes(data)


MANIFESTS = {
    "dash": b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">'
    b"<Period><AdaptationSet><Representation><BaseURL>file:/etc/victim.mp4</BaseURL>"
    b"</Representation></AdaptationSet></Period></MPD>\n",
    "hls": b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:/etc/victim.ts\n#EXT-X-ENDLIST\n",
    "concat": b"ffconcat version 1.0\nfile /etc/victim.wav\n",
    "sbg": b"-SE\nalpha: 200+10/50\nNOW alpha\n+24:00:00 alpha\n",
}

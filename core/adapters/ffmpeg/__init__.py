"""ffmpeg behind the Transcoder port: an untrusted child with allow-listed formats."""

"""File stores: videos and MP3s in a directory or GridFS, partial uploads, scratch space."""

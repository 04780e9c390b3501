"""The adapters: each port on a real technology, grouped by technology (`ffmpeg/`, `mysql/`,
`redis/`, `stores/`; one module where one file is enough). Only core.bootstrap imports them."""

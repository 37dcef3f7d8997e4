"""The local web app behind ``composer serve``: one page to write, continue, see and hear music.

A Starlette application (``app.create_app``, served by uvicorn) loads the model once and
shares it between requests one generation at a time (``studio``); the page
(``static/index.html``) asks for pieces or continuations and shows the verovio SVG score,
an audio player and download links. Uploaded melodies are read by the CLI's own safe
reader in a child process that is killed when it runs too long (``prompt_reader``);
request bodies are refused above a size limit before they are read (``limits``); every
request works in its own temporary folder, and results stay downloadable for a while in a
server-owned folder under ids the server makes, with fixed file names (``store``).
Binds to 127.0.0.1 unless told otherwise.
"""

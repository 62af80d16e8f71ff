// A photo chosen in a resolve form (/my) is shrunk on the phone before it is sent: drawn on a
// canvas no longer than the form's data-max-side pixels and encoded as JPEG, lowering the
// quality (then the size) until it is within data-max-bytes, the service's limit per photo
// (GEOGRID_MAX_PHOTO_BYTES, geogrid/requests/media.py). The file input then holds the small
// JPEG, so the form posts as it would without JavaScript — where the server refuses a photo
// over the limit with a message.
(() => {
  "use strict";

  async function decode(file) {
    // Upright as the camera meant it (the Exif orientation), where the browser can say so.
    if (window.createImageBitmap) {
      try {
        return await createImageBitmap(file, { imageOrientation: "from-image" });
      } catch (e) {
        // fall back to an <img> below
      }
    }
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.src = url;
    try {
      await img.decode();
    } finally {
      URL.revokeObjectURL(url);
    }
    return img;
  }

  function encode(canvas, quality) {
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
  }

  async function shrink(file, maxBytes, maxSide) {
    const image = await decode(file);
    const width = image.width;
    const height = image.height;
    let scale = Math.min(1, maxSide / Math.max(width, height));
    if (scale === 1 && file.size <= maxBytes && file.type === "image/jpeg") {
      return { file, width, height };
    }
    const canvas = document.createElement("canvas");
    let quality = 0.85;
    for (let attempt = 0; attempt < 12; attempt += 1) {
      canvas.width = Math.max(1, Math.round(width * scale));
      canvas.height = Math.max(1, Math.round(height * scale));
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff"; // a transparent PNG gets a white background, not black
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
      const blob = await encode(canvas, quality);
      if (blob && blob.size <= maxBytes) {
        const name = (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg";
        return {
          file: new File([blob], name, { type: "image/jpeg", lastModified: Date.now() }),
          width: canvas.width,
          height: canvas.height,
        };
      }
      if (quality > 0.55) {
        quality -= 0.1;
      } else {
        scale *= 0.8;
      }
    }
    throw new Error("the photo could not be made small enough");
  }

  function kilobytes(n) {
    return Math.round(n / 1024).toLocaleString(document.documentElement.lang) + " KB";
  }

  function watch(form) {
    const input = form.querySelector("input[type=file]");
    const status = form.querySelector(".photo-status");
    const submit = form.querySelector("button[type=submit]");
    const maxBytes = Number(form.dataset.maxBytes);
    const maxSide = Number(form.dataset.maxSide);
    let preview = null;
    input.addEventListener("change", async () => {
      const chosen = input.files && input.files[0];
      if (preview) {
        URL.revokeObjectURL(preview.src);
        preview.remove();
        preview = null;
      }
      delete form.dataset.photoBytes;
      if (!chosen) {
        status.textContent = status.dataset.idle;
        return;
      }
      submit.disabled = true;
      form.dataset.photo = "working";
      status.textContent = status.dataset.working;
      try {
        const small = await shrink(chosen, maxBytes, maxSide);
        const list = new DataTransfer();
        list.items.add(small.file);
        input.files = list.files; // no change event: this handler does not run again
        form.dataset.photo = "ready";
        form.dataset.photoBytes = String(small.file.size);
        status.textContent = `${status.dataset.ready} ${small.width} × ${small.height}, ${kilobytes(small.file.size)}`;
        preview = document.createElement("img");
        preview.className = "photo-preview";
        preview.alt = "";
        preview.src = URL.createObjectURL(small.file);
        status.after(preview);
      } catch (e) {
        form.dataset.photo = "failed";
        status.textContent = status.dataset.failed;
        if (chosen.size > maxBytes) {
          input.value = ""; // too large to send as it is: the server would refuse it
        }
      } finally {
        submit.disabled = false;
      }
    });
  }

  document.querySelectorAll("form.resolve").forEach(watch);
})();

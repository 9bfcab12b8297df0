// The admin's photos of an item: drop files (or choose them) to upload, each
// with its progress; move a photo earlier or later; remove one. The server
// checks everything (format, size, the eight-photo limit, bids): a refused
// file says why and the others go on.
import { useQueryClient } from '@tanstack/react-query';
import { useRef, useState, type DragEvent } from 'react';

import { ApiError } from '../api/client';
import * as endpoints from '../api/endpoints';
import type { Item, Photo } from '../api/types';
import { altText } from '../photos';

/** One file on its way up: its progress, or why it was refused. */
interface Upload {
  key: number;
  name: string;
  sent: number;
  failed?: string;
}

const ACCEPTED = 'image/jpeg,image/png,image/webp';

/** The server's limit: a larger file is refused here, before it is sent. */
const MAX_BYTES = 10 * 1024 * 1024;

function why(error: unknown): string {
  return error instanceof ApiError ? error.message : 'the upload failed; try again';
}

export function PhotoManager({ item }: { item: Item }) {
  const queryClient = useQueryClient();
  const [photos, setPhotos] = useState<Photo[]>(item.photos ?? []);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  // A move or removal under way: the buttons wait for it.
  const [busy, setBusy] = useState(false);
  const nextKey = useRef(0);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['items'] });
  const update = (key: number, change: Partial<Upload>) =>
    setUploads((all) => all.map((upload) => (upload.key === key ? { ...upload, ...change } : upload)));

  const upload = async (files: File[]) => {
    const started = files.map((file) => ({ key: nextKey.current++, name: file.name, sent: 0 }));
    setUploads((all) => [...all, ...started]);
    // One after another: the order chosen is the order shown.
    for (const [n, file] of files.entries()) {
      const { key } = started[n]!;
      if (file.size > MAX_BYTES) {
        update(key, { failed: 'the file is larger than 10 MiB' });
        continue;
      }
      try {
        const photo = await endpoints.uploadPhoto(item.id, file, (sent) => update(key, { sent }));
        setPhotos((all) => [...all, photo]);
        setUploads((all) => all.filter((u) => u.key !== key));
      } catch (error) {
        update(key, { failed: why(error) });
      }
    }
    await refresh();
  };

  const move = async (from: number, to: number) => {
    const order = [...photos];
    const [moved] = order.splice(from, 1);
    order.splice(to, 0, moved!);
    setProblem(null);
    setBusy(true);
    try {
      await endpoints.reorderPhotos(
        item.id,
        order.map((photo) => photo.id),
      );
      setPhotos(order);
      await refresh();
    } catch (error) {
      setProblem(why(error));
    } finally {
      setBusy(false);
    }
  };

  const remove = async (photo: Photo) => {
    setProblem(null);
    setBusy(true);
    try {
      await endpoints.deletePhoto(item.id, photo.id);
      setPhotos((all) => all.filter((each) => each.id !== photo.id));
      await refresh();
    } catch (error) {
      setProblem(why(error));
    } finally {
      setBusy(false);
    }
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    void upload([...event.dataTransfer.files]);
  };

  return (
    <section aria-labelledby={`photos-${item.id}`} className="photo-manager">
      <h4 id={`photos-${item.id}`}>Photos</h4>
      <div
        className={dragging ? 'dropzone dragging' : 'dropzone'}
        data-testid="photo-dropzone"
        onDragOver={(event) => {
          event.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p>Drop JPEG, PNG or WebP photos here (at most 8, 10 MiB each), or</p>
        <label className="button secondary">
          Choose photos
          <input
            type="file"
            accept={ACCEPTED}
            multiple
            className="visually-hidden"
            onChange={(event) => {
              void upload([...(event.target.files ?? [])]);
              event.target.value = '';
            }}
          />
        </label>
      </div>
      {uploads.length > 0 && (
        <ul className="uploads" aria-live="polite">
          {uploads.map((each) => (
            <li key={each.key}>
              {each.name}:{' '}
              {each.failed ? (
                <span role="alert">refused: {each.failed}</span>
              ) : (
                <progress value={each.sent} max={1} aria-label={`Uploading ${each.name}`} />
              )}
            </li>
          ))}
        </ul>
      )}
      {problem && <p role="alert">{problem}</p>}
      {photos.length > 0 && (
        <ol className="photo-list">
          {photos.map((photo, n) => (
            <li key={photo.id}>
              <img src={photo.thumb_url} alt={altText(item.title, n, photos.length)} width={96} />
              <div className="row-actions">
                <button type="button" className="secondary" disabled={busy || n === 0} onClick={() => void move(n, n - 1)}>
                  Move earlier
                </button>
                <button type="button" className="secondary" disabled={busy || n === photos.length - 1} onClick={() => void move(n, n + 1)}>
                  Move later
                </button>
                <button type="button" className="secondary" disabled={busy} onClick={() => void remove(photo)}>
                  Remove
                </button>
              </div>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

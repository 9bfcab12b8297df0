// An item's photos in the auction room: one shown large (the thumbnail on a
// phone, the full image on a wider screen, chosen by the browser from
// srcset), previous/next buttons, the arrow keys, and a strip of
// thumbnails. Each image's alt text is the item's title and its position.
import { useState, type KeyboardEvent } from 'react';

import type { Photo } from '../api/types';
import { altText } from '../photos';

/** The thumbnail's width: its longer side is 480 px, or it is the image itself. */
function thumbnailWidth(photo: Photo): number {
  const longer = Math.max(photo.width, photo.height);
  return longer <= 480 ? photo.width : Math.round((photo.width * 480) / longer);
}

export function Gallery({ title, photos }: { title: string; photos: Photo[] }) {
  const [shown, setShown] = useState(0);
  if (photos.length === 0) return null;
  const index = Math.min(shown, photos.length - 1);
  const photo = photos[index]!;
  const step = (by: number) => setShown((index + by + photos.length) % photos.length);
  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === 'ArrowRight') step(1);
    else if (event.key === 'ArrowLeft') step(-1);
    else if (event.key === 'Home') setShown(0);
    else if (event.key === 'End') setShown(photos.length - 1);
    else return;
    event.preventDefault();
  };
  return (
    <section className="gallery" aria-roledescription="gallery" aria-label={`Photos of ${title}`} tabIndex={0} onKeyDown={onKeyDown}>
      <figure>
        <img
          src={photo.url}
          srcSet={`${photo.thumb_url} ${thumbnailWidth(photo)}w, ${photo.url} ${photo.width}w`}
          sizes="(max-width: 40rem) 100vw, 40rem"
          width={photo.width}
          height={photo.height}
          alt={altText(title, index, photos.length)}
          data-testid="gallery-image"
        />
        <figcaption aria-live="polite">
          Photo {index + 1} of {photos.length}
        </figcaption>
      </figure>
      {photos.length > 1 && (
        <>
          <div className="row-actions">
            <button type="button" className="secondary" onClick={() => step(-1)}>
              Previous photo
            </button>
            <button type="button" className="secondary" onClick={() => step(1)}>
              Next photo
            </button>
          </div>
          <ul className="gallery-strip">
            {photos.map((each, n) => (
              <li key={each.id}>
                <button type="button" aria-current={n === index} aria-label={`Show photo ${n + 1} of ${photos.length}`} onClick={() => setShown(n)}>
                  <img src={each.thumb_url} alt="" loading="lazy" />
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

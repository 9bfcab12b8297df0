import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { fireEvent, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';

import { ApiError } from '../api/client';

import * as endpoints from '../api/endpoints';
import type { Photo } from '../api/types';
import { anItem, anonymous, mockApi, problem } from '../test/app';
import { PhotoManager } from './PhotoManager';

const server = mockApi(...anonymous);

function photo(n: number): Photo {
  return { id: `photo-${n}`, url: `/media/${n}.jpg`, thumb_url: `/media/t${n}.jpg`, width: 800, height: 600 };
}

function renderManager(photos: Photo[]) {
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={queryClient}>
      <PhotoManager item={anItem({ id: 'lot', title: 'Lamp', photos })} />
    </QueryClientProvider>,
  );
}

const thumbnails = () => screen.getAllByRole('img').map((img) => img.getAttribute('alt'));

describe("the admin's photos", () => {
  // jsdom's XMLHttpRequest never finishes sending a FormData through msw
  // (a browser's does: the end-to-end test uploads for real), so the
  // upload itself is stood in for here; its progress callback is driven.
  it('uploads chosen files one after another with their progress, and says why a refused one was refused', async () => {
    const sent: string[] = [];
    let next = 1;
    vi.spyOn(endpoints, 'uploadPhoto').mockImplementation((itemId, file, onProgress) => {
      expect(itemId).toBe('lot');
      const name = (file as File).name;
      sent.push(name);
      onProgress?.(0.5);
      if (name === 'notes.txt') {
        return Promise.reject(new ApiError({ type: '', title: '', status: 422, detail: 'the file is not a JPEG, PNG or WebP image', error_code: 'invalid_image' }));
      }
      return Promise.resolve(photo(next++));
    });
    renderManager([]);
    const huge = new File([new Uint8Array(10 * 1024 * 1024 + 1)], 'huge.jpg', { type: 'image/jpeg' });
    const files = [new File(['a'], 'one.jpg', { type: 'image/jpeg' }), new File(['b'], 'notes.txt'), huge, new File(['c'], 'two.png', { type: 'image/png' })];
    await userEvent.upload(screen.getByLabelText('Choose photos'), files, { applyAccept: false });
    await screen.findByRole('img', { name: 'Lamp, photo 2 of 2' });
    const [refused, tooLarge] = screen.getAllByRole('alert');
    expect(refused!.closest('li')).toHaveTextContent('notes.txt: refused: the file is not a JPEG, PNG or WebP image');
    // Not sent at all: the server's limit is known here.
    expect(tooLarge!.closest('li')).toHaveTextContent('huge.jpg: refused: the file is larger than 10 MiB');
    expect(sent).toEqual(['one.jpg', 'notes.txt', 'two.png']);
    expect(thumbnails()).toEqual(['Lamp, photo 1 of 2', 'Lamp, photo 2 of 2']);
  });

  it('shows the progress of each upload, and takes dropped files', async () => {
    let finish: (photo: Photo) => void = () => {};
    vi.spyOn(endpoints, 'uploadPhoto').mockImplementation((_, __, onProgress) => {
      onProgress?.(0.25);
      return new Promise((resolve) => {
        finish = resolve;
      });
    });
    renderManager([]);
    const zone = screen.getByTestId('photo-dropzone');
    fireEvent.dragOver(zone);
    expect(zone).toHaveClass('dragging');
    fireEvent.drop(zone, { dataTransfer: { files: [new File(['x'], 'dropped.webp', { type: 'image/webp' })] } });
    expect(zone).not.toHaveClass('dragging');
    const progress = await screen.findByRole('progressbar', { name: 'Uploading dropped.webp' });
    expect(progress).toHaveAttribute('value', '0.25');
    finish(photo(7));
    expect(await screen.findByRole('img', { name: 'Lamp, photo 1 of 1' })).toHaveAttribute('src', '/media/t7.jpg');
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
  });

  it('moves and removes photos, and shows what the server refused', async () => {
    const orders: unknown[] = [];
    server.use(
      http.put('*/api/v1/items/lot/photos/order', async ({ request }) => {
        orders.push(await request.json());
        return new HttpResponse(null, { status: 204 });
      }),
      http.delete('*/api/v1/items/lot/photos/photo-1', () => new HttpResponse(null, { status: 204 })),
      http.delete('*/api/v1/items/lot/photos/photo-2', () => problem(409, 'item_has_bids', { detail: 'the photos of an item with bids stay' })),
    );
    renderManager([photo(1), photo(2), photo(3)]);
    const rows = () => screen.getAllByRole('listitem');
    expect(within(rows()[0]!).getByRole('button', { name: 'Move earlier' })).toBeDisabled();
    await userEvent.click(within(rows()[2]!).getByRole('button', { name: 'Move earlier' }));
    expect(orders).toEqual([{ ids: ['photo-1', 'photo-3', 'photo-2'] }]);
    expect(within(rows()[1]!).getByRole('img')).toHaveAttribute('src', '/media/t3.jpg');
    await userEvent.click(within(rows()[0]!).getByRole('button', { name: 'Remove' }));
    expect(thumbnails()).toEqual(['Lamp, photo 1 of 2', 'Lamp, photo 2 of 2']);
    await userEvent.click(within(rows()[1]!).getByRole('button', { name: 'Remove' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('the photos of an item with bids stay');
    expect(rows()).toHaveLength(2);
  });
});

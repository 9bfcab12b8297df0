import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

import type { Photo } from '../api/types';
import { Gallery } from './Gallery';

function photos(count: number): Photo[] {
  return Array.from({ length: count }, (_, n) => ({
    id: `photo-${n}`,
    url: `/media/${'a'.repeat(63)}${n}.jpg`,
    thumb_url: `/media/${'b'.repeat(63)}${n}.jpg`,
    width: 1200,
    height: 800,
  }));
}

describe('the gallery', () => {
  it('shows nothing for an item without photos', () => {
    const { container } = render(<Gallery title="Lamp" photos={[]} />);
    expect(container).toBeEmptyDOMElement();
  });

  it('names each photo by the title and its place, and steps with buttons, arrows, Home and End', async () => {
    render(<Gallery title="Brass lamp" photos={photos(3)} />);
    const shown = () => screen.getByTestId('gallery-image');
    expect(shown()).toHaveAttribute('alt', 'Brass lamp, photo 1 of 3');
    // Sized for phones: the thumbnail where the screen is narrow.
    expect(shown().getAttribute('srcset')).toBe(`/media/${'b'.repeat(63)}0.jpg 480w, /media/${'a'.repeat(63)}0.jpg 1200w`);
    await userEvent.click(screen.getByRole('button', { name: 'Next photo' }));
    expect(shown()).toHaveAttribute('alt', 'Brass lamp, photo 2 of 3');
    const gallery = screen.getByRole('region', { name: 'Photos of Brass lamp' });
    gallery.focus();
    await userEvent.keyboard('{ArrowRight}');
    expect(shown()).toHaveAttribute('alt', 'Brass lamp, photo 3 of 3');
    await userEvent.keyboard('{ArrowRight}');
    expect(shown()).toHaveAttribute('alt', 'Brass lamp, photo 1 of 3');
    await userEvent.keyboard('{ArrowLeft}');
    expect(shown()).toHaveAttribute('alt', 'Brass lamp, photo 3 of 3');
    await userEvent.keyboard('{Home}');
    expect(screen.getByText('Photo 1 of 3')).toBeInTheDocument();
    await userEvent.keyboard('{End}');
    expect(screen.getByText('Photo 3 of 3')).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Show photo 2 of 3' }));
    expect(shown()).toHaveAttribute('alt', 'Brass lamp, photo 2 of 3');
    expect(screen.getByRole('button', { name: 'Show photo 2 of 3' })).toHaveAttribute('aria-current', 'true');
  });

  it('has no stepping for a single photo', () => {
    render(<Gallery title="Lamp" photos={photos(1)} />);
    expect(screen.getByTestId('gallery-image')).toHaveAttribute('alt', 'Lamp, photo 1 of 1');
    expect(screen.queryByRole('button', { name: 'Next photo' })).not.toBeInTheDocument();
  });
});

#!/usr/bin/env bash
# Regenerates the talk-off corpus used by dsp/tests/talkoff_real.rs and by
# scripts/compare-spandsp.sh: synthetic speech (espeak-ng) in several languages,
# voices, speeds and pitches, plus music-like material (sox synth), all as
# 8000 Hz mono 8-bit µ-law WAV. The WAVs are committed; tests never run this.
#
# Needs: apt-get install -y espeak-ng sox
# Usage: dsp/tests/data/talkoff/make_corpus.sh   (writes next to itself)
#
# Reproducible: espeak-ng and sox synth are deterministic, the noise uses a
# fixed sox seed (-R is the default "repeatable" mode of sox 14.4). Output was
# made with espeak-ng 1.51 and SoX 14.4.2 (Debian 12). The texts below were
# written for this corpus and are dedicated to the public domain.
#
# Level: every file is normalised to -1 dBFS peak, which puts the active
# speech level at about -15 to -20 dBm0: a loud but normal talker.
set -euo pipefail

cd "$(dirname "$0")"
command -v espeak-ng >/dev/null || { echo "needs espeak-ng" >&2; exit 1; }
command -v sox >/dev/null || { echo "needs sox" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 8 kHz mono µ-law WAV, peak -1 dBFS.
to_ulaw() { sox -R "$1" -r 8000 -c 1 -e u-law -b 8 "$2" gain -6 rate -v 8000 norm -1; }

EN1="Good morning, and thank you for calling. Please listen carefully, because our menu options have changed. \
If you know the extension of the person you are trying to reach, you may enter it at any time. \
For the sales office, the number is four one five, two six nine, eight three seven zero. \
We are open from nine in the morning until half past six in the evening."

EN2="The old lighthouse stood on the rocks for nearly two hundred years. Every night the keeper climbed \
one hundred and twelve steps to light the lamp, and every morning he wrote the weather in a thick grey book. \
Ships passing in the fog could hear the bell, a slow and heavy sound that rolled across the water. \
Seven, eight, nine, ten: the children counted the strokes from the harbour wall."

EN3="Hello? Yes, it's me. Can you hear me now? The line is terrible today. I said I'll be there at \
quarter to five, maybe a little later if the trains are running slow again. Did you get the message \
about Saturday? Oh, wonderful. Shall I bring anything? No? Alright then, see you soon, bye bye."

DE1="Guten Tag, Sie sind verbunden mit dem Kundendienst. Bitte halten Sie Ihre Kundennummer bereit. \
Unsere Rufnummer lautet null drei null, neun acht sieben sechs, fünf vier drei zwei. \
Wir sind montags bis freitags von acht bis achtzehn Uhr für Sie erreichbar. Vielen Dank für Ihre Geduld."

DE2="Am Rande des Waldes lag ein kleines Dorf mit einer alten Mühle. Der Müller stand jeden Morgen früh \
auf, hörte das Rauschen des Baches und zählte die Säcke mit Mehl: einer, zwei, drei, vier. \
Im Winter war es still, nur der Schnee knirschte unter den Stiefeln der Kinder auf dem Weg zur Schule."

CMN1="您好，欢迎致电客户服务中心。请注意，我们的菜单选项已经更改。如果您知道分机号码，请随时拨打。\
销售部的电话是八六一零，六五四三，二一九八。我们的营业时间是每天上午九点到下午六点半。谢谢您的耐心等待。"

CMN2="在很久以前，山脚下有一个安静的小村庄。每天早上，老人都会走到河边，看着太阳慢慢升起。\
孩子们在田野里奔跑，一边唱歌一边数着天上的鸟：一，二，三，四，五，六，七。\
到了秋天，稻子金黄，整个村子都飘着饭菜的香味。"

CMN3="喂？你好，是我。你听得到吗？今天信号不太好。我说我大概五点左右到，如果地铁慢的话可能会晚一点。\
周六的事情你收到消息了吗？太好了。要我带点什么吗？不用？好的，那回头见，再见。"

FR1="Bonjour et bienvenue. Notre service client est ouvert du lundi au vendredi, de neuf heures à dix-huit heures. \
Pour joindre le standard, composez le zéro un, quarante-deux, soixante-huit, trente-trois, dix-sept."

ES1="Hola, buenas tardes. Le llamo por lo de la reserva para el sábado. Somos cuatro personas, \
y llegaremos hacia las nueve y media. Mi número es seis uno dos, tres cuatro cinco, siete ocho nueve."

# name | espeak voice | speed (wpm) | pitch (0-99) | text
speech=(
  "speech_en_us_male|en-us|170|45|$EN1"
  "speech_en_us_female|en-us+f3|150|70|$EN2"
  "speech_en_gb_male_fast|en-gb-x-rp+m3|230|35|$EN3"
  "speech_en_us_female_slow_high|en-us+f5|115|90|$EN1"
  "speech_en_us_klatt|en-us+klatt4|165|50|$EN3"
  "speech_de_male|de|160|40|$DE1"
  "speech_de_female|de+f2|180|65|$DE2"
  "speech_cmn_male|cmn|150|45|$CMN1"
  "speech_cmn_female|cmn+f4|140|75|$CMN2"
  "speech_cmn_male_fast_low|cmn+m7|210|25|$CMN3"
  "speech_fr_female|fr+f1|160|60|$FR1"
  "speech_es_male|es+m2|175|50|$ES1"
)
for entry in "${speech[@]}"; do
  IFS='|' read -r name voice speed pitch text <<<"$entry"
  espeak-ng -v "$voice" -s "$speed" -p "$pitch" -g 2 -w "$tmp/$name.wav" "$text"
  # Shorten pauses longer than 0.3 s and keep the first 12 s (size budget: about 1.5 MB).
  sox -R "$tmp/$name.wav" "$tmp/$name.short.wav" silence -l 1 0.05 0.5% -1 0.3 0.5% trim 0 12
  to_ulaw "$tmp/$name.short.wav" "$name.wav"
done

# Music-like material. Notes in Hz (equal temperament, A4 = 440).
# 1) Chord progression in rich timbres (sawtooth + square), slow tremolo and a flanger
#    for pitch wobble (vibrato-like), some reverb.
i=0
for c in "1.2 261.63 329.63 392.00" "1.2 220.00 261.63 329.63" "1.2 174.61 220.00 261.63" \
         "1.2 196.00 246.94 293.66" "0.6 349.23 440.00 523.25" "0.6 392.00 493.88 587.33" \
         "1.2 523.25 659.25 783.99" "1.2 440.00 554.37 659.25" "1.2 698.46 880.00 1046.50" \
         "1.2 293.66 369.99 440.00" "0.6 466.16 587.33 698.46" "0.6 392.00 493.88 587.33" \
         "2.4 261.63 329.63 392.00"; do
  set -- $c
  sox -R -r 16000 -n -c 1 "$tmp/chord_$(printf %02d $i).wav" \
    synth "$1" sawtooth "$2" sawtooth "$3" square "$4" remix - fade 0.02 "$1" 0.08
  i=$((i + 1))
done
sox -R "$tmp"/chord_*.wav "$tmp/chords.wav" tremolo 5 30 flanger 0 2 0 70 0.8 sine 25 lin reverb 30
to_ulaw "$tmp/chords.wav" music_chords.wav

# 2) A plucked melody doubled an octave up by a sine lead, over a sawtooth bass line;
#    a flanger (slowly modulated delay) gives the lead a vibrato-like pitch wobble.
#    (Each spec of one `synth` is its own channel; `remix -` mixes them to mono.)
mel="659.25 587.33 523.25 587.33 659.25 659.25 659.25 587.33 587.33 587.33 659.25 783.99 783.99 \
     659.25 587.33 523.25 587.33 659.25 659.25 659.25 659.25 587.33 587.33 659.25 587.33 523.25 \
     880.00 987.77 1046.50 1174.66 1318.51 1396.91 1567.98 1760.00 1567.98 1396.91 1318.51 1174.66"
i=0
for f in $mel; do
  sox -R -r 16000 -n -c 1 "$tmp/mel_$(printf %03d $i).wav" \
    synth 0.35 pluck "$f" sine "$(echo "$f * 2" | bc)" remix - fade 0 0.35 0.1
  i=$((i + 1))
done
sox -R "$tmp"/mel_*.wav "$tmp/melody.wav" flanger 0 3 0 80 6 sine 25 lin
len=$(soxi -D "$tmp/melody.wav")
sox -R -r 16000 -n -c 1 "$tmp/bass.wav" synth "$len" sawtooth 130.81 sawtooth 98.00 remix - tremolo 2 60 gain -8
sox -R -m "$tmp/melody.wav" "$tmp/bass.wav" "$tmp/melody_bass.wav" reverb 20
to_ulaw "$tmp/melody_bass.wav" music_melody.wav

# 3) Organ-like chords (sine partials 1,2,3,4,6 with falling amplitude) with vibrato,
#    over pink noise at about 20 dB below the music (a noisy room / radio).
i=0
for root in 261.63 293.66 329.63 349.23 392.00 440.00 392.00 349.23 329.63 293.66; do
  f5=$(echo "$root * 1.4983" | bc -l)
  sox -R -r 16000 -n -c 1 "$tmp/org_$(printf %02d $i).wav" \
    synth 1.0 sine "$root" sine "$(echo "$root * 2" | bc -l)" sine "$(echo "$root * 3" | bc -l)" \
    sine "$f5" sine "$(echo "$f5 * 2" | bc -l)" sine "$(echo "$root * 4" | bc -l)" \
    sine "$(echo "$root * 6" | bc -l)" remix 1v0.5,2v0.35,3v0.25,4v0.45,5v0.3,6v0.15,7v0.1 \
    fade 0.05 1.0 0.1 flanger 0 1.5 0 60 5 sine 25 lin
  i=$((i + 1))
done
sox -R "$tmp"/org_*.wav "$tmp/organ.wav"
len=$(soxi -D "$tmp/organ.wav")
sox -R -r 16000 -n -c 1 "$tmp/pink.wav" synth "$len" pinknoise gain -28
sox -R -m "$tmp/organ.wav" "$tmp/pink.wav" "$tmp/organ_noise.wav"
to_ulaw "$tmp/organ_noise.wav" music_organ_noise.wav

ls -l ./*.wav
du -ch ./*.wav | tail -1
